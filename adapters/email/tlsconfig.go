package email

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/samhub/samhub/adapters"
)

// TLS modes accepted in configuration. There is deliberately no mode
// without TLS and no switch to skip certificate verification.
const (
	modeImplicit = "implicit"
	modeStartTLS = "starttls"
)

// connConfig is what both adapters need to reach a server over TLS.
type connConfig struct {
	Host       string `mapstructure:"host" required:"true" doc:"The mail server's host name." example:"smtp.kommune.example.dk"`
	Port       int    `mapstructure:"port" doc:"Port; 0 or absent: the protocol's port for the tls mode (SMTP 465/587, IMAP 993/143)."`
	TLS        string `mapstructure:"tls" required:"true" enum:"implicit,starttls" doc:"How TLS starts: implicit (from the first byte) or starttls (which must succeed). There is no mode without TLS: mail carrying personal data is never sent or read in clear text."`
	MinTLS     string `mapstructure:"min_tls" default:"1.2" enum:"1.2,1.3" doc:"Oldest TLS version accepted."`
	CAFile     string `mapstructure:"ca_file" doc:"PEM file of a private CA to trust besides the system roots. Certificates are always verified."`
	ServerName string `mapstructure:"server_name" doc:"Name the server certificate must carry; empty: host."`
	Username   string `mapstructure:"username" doc:"Login name." example:"samhub"`
	Password   string `mapstructure:"password" secret:"true" doc:"Login password; better as password_file."`
}

// resolved is a checked connConfig.
type resolved struct {
	addr     string
	mode     string
	tls      *tls.Config
	username string
	password string
}

// resolve checks c and builds the TLS configuration. implicitPort and
// startTLSPort are the protocol's default ports.
func (c connConfig) resolve(implicitPort, startTLSPort int) (*resolved, error) {
	if strings.TrimSpace(c.Host) == "" {
		return nil, &adapters.ConfigError{Key: "host", Msg: "must name the mail server"}
	}
	var r resolved
	switch strings.ToLower(strings.TrimSpace(c.TLS)) {
	case modeImplicit:
		r.mode = modeImplicit
		if c.Port == 0 {
			c.Port = implicitPort
		}
	case modeStartTLS:
		r.mode = modeStartTLS
		if c.Port == 0 {
			c.Port = startTLSPort
		}
	case "":
		return nil, &adapters.ConfigError{Key: "tls", Msg: `must be "implicit" or "starttls"`}
	default:
		return nil, &adapters.ConfigError{Key: "tls", Msg: fmt.Sprintf(`must be "implicit" or "starttls" (got %q); mail carrying personal data is never sent or read without TLS`, c.TLS)}
	}
	if c.Port < 1 || c.Port > 65535 {
		return nil, &adapters.ConfigError{Key: "port", Msg: "must be between 1 and 65535"}
	}
	r.addr = net.JoinHostPort(c.Host, fmt.Sprint(c.Port))

	minVersion, err := parseMinTLS(c.MinTLS)
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if c.CAFile != "" {
		pemBytes, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, &adapters.ConfigError{Key: "ca_file", Msg: fmt.Sprintf("cannot be read: %v", err)}
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, &adapters.ConfigError{Key: "ca_file", Msg: "must contain at least one PEM certificate"}
		}
	}
	serverName := c.ServerName
	if serverName == "" {
		serverName = c.Host
	}
	r.tls = &tls.Config{MinVersion: minVersion, RootCAs: roots, ServerName: serverName}

	r.username, r.password = c.Username, c.Password
	if r.username == "" && r.password != "" {
		return nil, &adapters.ConfigError{Key: "username", Msg: "must be set when a password is given"}
	}
	return &r, nil
}

// parseMinTLS accepts "1.2" (the default) and "1.3". Anything older is
// refused: Datatilsynet requires TLS 1.2 or newer for personal data.
func parseMinTLS(s string) (uint16, error) {
	switch strings.TrimSpace(s) {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	default:
		return 0, &adapters.ConfigError{Key: "min_tls", Msg: fmt.Sprintf(`must be "1.2" or "1.3" (got %q); older TLS versions are not allowed for personal data`, s)}
	}
}
