package digitalpostsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/samhub/samhub/internal/sim/simstore"
)

// Message is one message Digital Post took, as the simulator stores it.
type Message struct {
	UUID           string `json:"messageUUID"`
	TransmissionID string `json:"transmissionId"`
	TransactionID  string `json:"transactionId"` // X-TransaktionsId of the request that stored it
	KombiValgKode  string `json:"kombiValgKode"`
	// Channel is how it reaches the citizen: "digitalpost", or "print"
	// (a printed letter, for a citizen exempt from Digital Post when
	// Automatisk Valg sent a ForsendelseI).
	Channel           string     `json:"channel"`
	SenderCVR         string     `json:"senderCvr"`
	SenderLabel       string     `json:"senderLabel"`
	RecipientCPR      string     `json:"recipientCpr"`
	Label             string     `json:"label"`
	Mandatory         bool       `json:"mandatory"`
	LegalNotification bool       `json:"legalNotification"`
	Created           time.Time  `json:"createdDateTime"`
	ReceivedAt        time.Time  `json:"receivedAt"`
	MainDocument      []File     `json:"mainDocument"`
	Additional        [][]File   `json:"additionalDocuments,omitempty"`
	Print             *PrintPart `json:"print,omitempty"`
	// Repeats counts the later requests with the same UUID (persisted).
	Repeats int `json:"repeats"`
}

// File is one file of a MeMo document; its bytes are under files/.
type File struct {
	EncodingFormat string `json:"encodingFormat"`
	Filename       string `json:"filename"`
	Language       string `json:"language"`
	SHA256         string `json:"sha256"`
	Size           int    `json:"size"`
}

// PrintPart is the ForsendelseI sent for printing.
type PrintPart struct {
	AfsendelseID   string `json:"afsendelseIdentifikator"`
	ForsendelseTyp string `json:"forsendelseTypeIdentifikator"`
	RecipientCPR   string `json:"recipientCpr"`
	Title          string `json:"titel"`
	SHA256         string `json:"sha256"`
	Size           int    `json:"size"`
}

// state is everything the simulator persists.
type state struct {
	Messages map[string]*Message `json:"messages"`
	Order    []string            `json:"order"` // UUIDs as received
}

const stateFile = "state.json"

func loadState(dir string) (*state, error) {
	st := &state{Messages: map[string]*Message{}}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("digitalpostsim: %s: %w", stateFile, err)
	}
	if st.Messages == nil {
		st.Messages = map[string]*Message{}
	}
	return st, nil
}

// saveLocked writes the state as Digital Post would have it after a
// crash: a temp file, synced, renamed, the directory synced, before the
// caller answers; the caller holds the lock. It is rewritten whole: a
// message's record is small and a municipality sends few to parents.
func (s *Server) saveLocked() error {
	b, err := json.Marshal(s.st)
	if err != nil {
		return err
	}
	return simstore.WriteFile(filepath.Join(s.cfg.DataDir, stateFile), b, nil)
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// putFile stores data under its SHA-256 and returns the digest.
func (s *Server) putFile(data []byte) (string, error) {
	name := digest(data)
	path := filepath.Join(s.cfg.DataDir, "files", name)
	if _, err := os.Stat(path); err == nil {
		return name, nil
	}
	return name, simstore.WriteFile(path, data, nil)
}

// FileData returns the bytes of a stored file by its SHA-256.
func (s *Server) FileData(sha string) ([]byte, error) {
	if len(sha) != 64 {
		return nil, errors.New("digitalpostsim: not a SHA-256")
	}
	if _, err := hex.DecodeString(sha); err != nil {
		return nil, errors.New("digitalpostsim: not a SHA-256")
	}
	return os.ReadFile(filepath.Join(s.cfg.DataDir, "files", sha))
}
