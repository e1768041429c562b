package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and bucket names the hub owns.
const (
	StreamLetters = "SAMHUB_LETTERS" // every letter as received, read by one durable consumer per destination
	StreamParked  = "SAMHUB_PARKED"  // the retry queue: full copies of letters a destination gave up on
	StreamJourney = "SAMHUB_JOURNEY" // per-letter journey events
	StreamAudit   = "SAMHUB_AUDIT"   // append-only audit of human actions and personal-data reads
	BucketState   = "samhub_state"   // adapters' durable state (cursors, duplicate memory)
	BucketLeases  = "samhub_leases"  // which replica runs which polling source
	BucketConsent = "samhub_consent" // consents recorded by the coordinator
	// BucketSessions holds the console's sessions, so any replica serves
	// any request; entries expire after SessionTTL unless used.
	BucketSessions = "samhub_sessions"
	BucketBlobs    = "samhub_blobs"   // object store: originals and attachments of letters too large to store inline
	BucketCouncil  = "samhub_council" // the council's register: meetings, referrals' facts, rejections (no personal data but tokens)

	SubjLetters = "samhub.letters"
	SubjParked  = "samhub.parked"
	SubjJourney = "samhub.journey"
	SubjAudit   = "samhub.audit"
)

// Token turns a letter id (any characters) into a subject token.
func Token(id string) string {
	s := sha256.Sum256([]byte(id))
	return hex.EncodeToString(s[:16])
}

// SessionTTL is how long an unused console session is kept in the broker
// (the console ends it sooner: 30 minutes idle, 12 hours in all).
const SessionTTL = 12 * time.Hour

// InSubject is where a source's letter is stored.
func InSubject(source, letterID string) string {
	return SubjLetters + ".in." + source + "." + Token(letterID)
}

// ReplaySubject carries a parked letter back to one destination.
func ReplaySubject(dest, letterID string) string {
	return SubjLetters + ".replay." + dest + "." + Token(letterID)
}

// ParkedSubject is where a letter parked for dest with reason code is kept:
// samhub.parked.<dest>.code.<code>, the letter id in a header. The subjects
// stay few (destinations × reason codes) however many letters are parked: a
// subject per letter cost the server ≈ 110 bytes of index per parked letter
// and made counting the queue list every letter's subject (measured with a
// million parked letters: +107 MB, and 20 s per count). With the code in the
// subject the server filters and counts by destination and reason itself,
// so a page of a long queue reads only that page.
func ParkedSubject(dest, code string) string {
	return SubjParked + "." + dest + ".code." + ParkedCodeToken(code)
}

// ParkedCodeToken is a reason code as a subject token. Codes are snake_case
// words and stay as they are; anything else (empty, dots, spaces…) becomes
// "-" and its hex, which no plain code starts with, so two codes never share
// a token.
func ParkedCodeToken(code string) string {
	plain := code != "" && code[0] != '-'
	for i := 0; plain && i < len(code); i++ {
		c := code[i]
		plain = c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	if plain {
		return code
	}
	return "-" + hex.EncodeToString([]byte(code))
}

// ParkedCode reads a code back from its subject token.
func ParkedCode(token string) (string, bool) {
	if !strings.HasPrefix(token, "-") {
		return token, token != ""
	}
	b, err := hex.DecodeString(token[1:])
	return string(b), err == nil
}

// ParkedFilter selects the letters parked for dest (all when dest is
// empty), including those stored under the subjects of earlier builds
// (samhub.parked.<dest>, and one subject per letter before that).
func ParkedFilter(dest string) []string {
	if dest == "" {
		return []string{SubjParked + ".>"}
	}
	return []string{SubjParked + "." + dest, SubjParked + "." + dest + ".>"}
}

// ParkedCodeFilter selects the letters parked for dest ("" for every
// destination) with reason code under the current layout.
func ParkedCodeFilter(dest, code string) string {
	if dest == "" {
		dest = "*"
	}
	return SubjParked + "." + dest + ".code." + ParkedCodeToken(code)
}

// ParkedLegacyFilter selects what earlier builds parked for dest ("" for
// every destination): under samhub.parked.<dest>, and before that under
// samhub.parked.<dest>.<letter token>. Their reason code is only in the
// header.
func ParkedLegacyFilter(dest string) []string {
	if dest == "" {
		dest = "*"
	}
	return []string{SubjParked + "." + dest, SubjParked + "." + dest + ".*"}
}

// JourneySubject holds one letter's journey.
func JourneySubject(letterID string) string { return SubjJourney + "." + Token(letterID) }

// Provision creates the hub's streams and buckets, or checks and updates
// them, and refuses settings that could lose letters.
func Provision(ctx context.Context, js jetstream.JetStream, s Streams, replicas int) error {
	lettersMax, parkedMax, msgMax, journeyMax, auditMax := s.LettersMaxBytes, s.ParkedMaxBytes, s.MaxMsgSize, s.JourneyMaxBytes, s.AuditMaxBytes
	journeyPersist := jetstream.DefaultPersistMode
	if s.JourneyAsync && replicas <= 1 {
		journeyPersist = jetstream.AsyncPersistMode
	}
	want := []jetstream.StreamConfig{{
		Name:        StreamLetters,
		Description: "Samhub letters as received",
		Subjects:    []string{SubjLetters + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    lettersMax,
		MaxAge:      s.LettersMaxAge,
		MaxMsgSize:  int32(msgMax),
		Duplicates:  s.DedupWindow,
		Replicas:    replicas,
		AllowDirect: true, // duplicate look-ups and traces read without the API round trip
		// A source's round of letters is committed as one atomic batch
		// (one fsync); ensureStream turns it on for a stream made before.
		AllowAtomicPublish: true,
	}, {
		Name:        StreamParked,
		Description: "Samhub retry queue (parked letters)",
		Subjects:    []string{SubjParked + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew, // a full queue refuses, never drops the oldest
		MaxBytes:    parkedMax,
		MaxMsgSize:  int32(msgMax),
		Duplicates:  2 * time.Minute,
		Replicas:    replicas,
		AllowDirect: true,
	}, {
		Name:        StreamJourney,
		Description: "Samhub letter journeys",
		Subjects:    []string{SubjJourney + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld, // metadata, aged out by retention
		MaxAge:      s.JourneyMaxAge,
		MaxBytes:    journeyMax,
		Replicas:    replicas,
		AllowDirect: true,
		// Journey steps recorded together on a synced stream are committed
		// as one atomic batch (one fsync) when there are enough of them; the
		// server allows no atomic batches on an async stream.
		AllowAtomicPublish: journeyPersist == jetstream.DefaultPersistMode,
		PersistMode:        journeyPersist, // config streams.journey_persist: the journey is not the letter
	}, {
		Name:        StreamAudit,
		Description: "Samhub audit log",
		Subjects:    []string{SubjAudit + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew, // an audit record is never dropped to make room
		MaxAge:      s.AuditMaxAge,
		MaxBytes:    auditMax,
		Replicas:    replicas,
		DenyDelete:  true,
		DenyPurge:   true,
	}}
	for _, cfg := range want {
		if err := RetryAPI(ctx, func(ctx context.Context) error { return ensureStream(ctx, js, cfg) }); err != nil {
			return err
		}
	}
	for _, kv := range []jetstream.KeyValueConfig{
		{Bucket: BucketState, Description: "adapter state", Storage: jetstream.FileStorage, Replicas: replicas, History: 1},
		{Bucket: BucketLeases, Description: "source leases", Storage: jetstream.FileStorage, Replicas: replicas, TTL: LeaseTTL},
		{Bucket: BucketConsent, Description: "recorded consents", Storage: jetstream.FileStorage, Replicas: replicas, History: 16},
		{Bucket: BucketSessions, Description: "console sessions", Storage: jetstream.FileStorage, Replicas: replicas, History: 1, TTL: SessionTTL},
		// No age limit: the register keeps twelve months of figures and
		// more, past the letter stream's retention; the council prunes
		// by council.retention_days.
		{Bucket: BucketCouncil, Description: "the council's register", Storage: jetstream.FileStorage, Replicas: replicas, History: 1},
	} {
		err := RetryAPI(ctx, func(ctx context.Context) error {
			if err := checkExisting(ctx, js, "KV_"+kv.Bucket, replicas); err != nil {
				return err
			}
			// Create first: an unchanged bucket is then answered from what
			// exists, where an update is a proposal of its own on a cluster
			// (see ensureStream).
			_, err := js.CreateKeyValue(ctx, kv)
			if errors.Is(err, jetstream.ErrBucketExists) {
				_, err = js.UpdateKeyValue(ctx, kv)
			}
			if err != nil {
				return fmt.Errorf("bucket %s: %w", kv.Bucket, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Blobs never expire by age: the hub's collector deletes them once no
	// stored or parked letter can name them (package pipeline/blobs). File
	// storage and a size limit, like the letter streams; the underlying
	// stream discards new writes when full, so a full bucket refuses a
	// letter (retried) rather than dropping a blob a letter needs.
	blobsMax := s.BlobsMaxBytes
	return RetryAPI(ctx, func(ctx context.Context) error {
		if err := checkExisting(ctx, js, "OBJ_"+BucketBlobs, replicas); err != nil {
			return err
		}
		oc := jetstream.ObjectStoreConfig{
			Bucket:      BucketBlobs,
			Description: "Samhub letter parts too large to store inline",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxBytes:    blobsMax,
		}
		_, err := js.CreateObjectStore(ctx, oc)
		if errors.Is(err, jetstream.ErrBucketExists) {
			_, err = js.UpdateObjectStore(ctx, oc)
		}
		if err != nil {
			return fmt.Errorf("object store %s: %w", BucketBlobs, err)
		}
		return nil
	})
}

// apiAttempt bounds one try of a provisioning step. On a NATS cluster a
// request about a stream another replica is creating or updating at that
// moment can go unanswered; without a bound of its own it waited out the
// whole start (a minute) and the second replica of a pair exited.
const apiAttempt = 2 * time.Second

// RetryAPI runs step with its own deadline and tries again, from reading
// what exists, while ctx lasts, when a request went unanswered or another
// replica made the same stream, bucket or consumer in between.
func RetryAPI(ctx context.Context, step func(context.Context) error) error {
	for {
		c, cancel := context.WithTimeout(ctx, apiAttempt)
		err := step(c)
		cancel()
		if err == nil || ctx.Err() != nil ||
			!(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) ||
				errors.Is(err, jetstream.ErrConsumerExists) || errors.Is(err, jetstream.ErrConsumerNameAlreadyInUse)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// letterStreams are the streams whose loss is a lost letter.
var letterStreams = map[string]bool{StreamLetters: true, StreamParked: true, StreamAudit: true}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", want.Name, err)
	}
	have := st.CachedInfo().Config
	if letterStreams[want.Name] {
		if err := CheckSafe(have); err != nil {
			return err
		}
	}
	if err := checkPlacement(have, want.Replicas); err != nil {
		return err
	}
	// Bring sizes and ages in line with configuration; storage and
	// retention cannot change in place and were checked above.
	was := have
	have.MaxBytes, have.MaxAge, have.Duplicates, have.MaxMsgSize = want.MaxBytes, want.MaxAge, want.Duplicates, want.MaxMsgSize
	have.Discard, have.Description = want.Discard, want.Description
	// The persist mode is fixed when a stream is made (the server refuses to
	// change it): an existing journey stream keeps the mode it was made with.
	have.AllowDirect = have.AllowDirect || want.AllowDirect
	have.AllowAtomicPublish = have.AllowAtomicPublish || want.AllowAtomicPublish
	// Only a change is sent: on a cluster an update is a proposal of its
	// own, and two replicas starting at once sent updates of nothing that
	// went unanswered while the other's were applied, for up to 20 s.
	if have.MaxBytes == was.MaxBytes && have.MaxAge == was.MaxAge && have.Duplicates == was.Duplicates &&
		have.MaxMsgSize == was.MaxMsgSize && have.Discard == was.Discard && have.Description == was.Description &&
		have.AllowDirect == was.AllowDirect && have.AllowAtomicPublish == was.AllowAtomicPublish {
		return nil
	}
	if _, err := js.UpdateStream(ctx, have); err != nil {
		return fmt.Errorf("update stream %s: %w", want.Name, err)
	}
	return nil
}

// checkExisting checks the placement of a stream that a bucket is kept
// on, when it exists.
func checkExisting(ctx context.Context, js jetstream.JetStream, name string, replicas int) error {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	return checkPlacement(st.CachedInfo().Config, replicas)
}

// checkPlacement refuses a stream the hub would use as it is although it
// is not kept as configured: on file storage, on nats.replicas servers.
// The hub does not move or rescale existing data by itself.
func checkPlacement(c jetstream.StreamConfig, replicas int) error {
	if c.Storage != jetstream.FileStorage {
		return fmt.Errorf("stream %s uses memory storage (it would not survive a restart); it must use file storage. Fix or remove the stream, then start again", c.Name)
	}
	have := max(c.Replicas, 1)
	if have != max(replicas, 1) {
		return &SettingError{Key: "nats.replicas", Msg: fmt.Sprintf("is %d, but stream %s exists with %d replica(s); set nats.replicas to match, or change the stream's replicas (nats stream edit %s --replicas %d) before starting", replicas, c.Name, have, c.Name, replicas)}
	}
	return nil
}

// CheckSafe refuses stream settings that lose letters silently.
func CheckSafe(c jetstream.StreamConfig) error {
	var problems []string
	if c.Storage != jetstream.FileStorage {
		problems = append(problems, "uses memory storage (letters would not survive a restart); it must use file storage")
	}
	if c.Discard != jetstream.DiscardNew {
		problems = append(problems, "discards the oldest messages when full (DiscardOld would delete unprocessed letters); it must use DiscardNew")
	}
	if c.MaxBytes <= 0 && c.MaxMsgs <= 0 {
		problems = append(problems, "has no size limit (a full disk disables JetStream); set max_bytes")
	}
	if c.Retention == jetstream.WorkQueuePolicy || c.Retention == jetstream.InterestPolicy {
		problems = append(problems, "uses work-queue or interest retention, which deletes letters other destinations still need; it must use limits retention")
	}
	if len(problems) > 0 {
		return fmt.Errorf("stream %s is unsafe for letters: %s. Fix or remove the stream, then start again", c.Name, strings.Join(problems, "; "))
	}
	return nil
}
