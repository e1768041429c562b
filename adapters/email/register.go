package email

import "github.com/samhub/samhub/adapters"

func init() {
	adapters.Register("smtp", func(deps adapters.Deps, cfg map[string]any) (any, error) {
		return NewSMTPSink(deps, cfg)
	})
	adapters.Register("imap", func(deps adapters.Deps, cfg map[string]any) (any, error) {
		return NewIMAPSource(deps, cfg)
	})
}
