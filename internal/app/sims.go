package app

import (
	"log/slog"

	"github.com/samhub/samhub/internal/config"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

// Simulators are the in-process stand-ins for the case system, the EPJ
// and Digital Post that the demo configuration and the tests point
// adapters at.
type Simulators struct {
	closers     []func() error
	URLs        map[string]string
	CaseSys     *casesyssim.Server // nil unless configured
	EPJ         *epjsim.Server
	DigitalPost *digitalpostsim.Server
}

// StartSimulators starts the configured simulators.
func StartSimulators(c config.Simulators, log *slog.Logger) (*Simulators, error) {
	s := &Simulators{URLs: map[string]string{}}
	for _, start := range simStarters {
		if err := start(c, s, log); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// simStarters is filled by files that know each simulator, so a missing
// simulator package never blocks the rest of the wiring.
var simStarters []func(config.Simulators, *Simulators, *slog.Logger) error

// Close stops every simulator.
func (s *Simulators) Close() {
	if s == nil {
		return
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	s.closers = nil
}
