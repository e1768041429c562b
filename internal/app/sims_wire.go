package app

import (
	"fmt"
	"log/slog"

	"github.com/samhub/samhub/internal/config"
	casesyssim "github.com/samhub/samhub/internal/sim/casesys"
	digitalpostsim "github.com/samhub/samhub/internal/sim/digitalpost"
	epjsim "github.com/samhub/samhub/internal/sim/epj"
)

func init() {
	simStarters = append(simStarters, startCaseSys, startEPJ, startDigitalPost)
}

func startCaseSys(c config.Simulators, s *Simulators, log *slog.Logger) error {
	if c.CaseSys == nil {
		return nil
	}
	var maxUpload int64
	if c.CaseSys.MaxUpload != "" {
		n, err := config.ParseBytes(c.CaseSys.MaxUpload) // checked by config.Validate
		if err != nil {
			return fmt.Errorf("simulators.casesys.max_upload: %w", err)
		}
		maxUpload = n
	}
	sim, err := casesyssim.New(casesyssim.Config{DataDir: c.CaseSys.DataDir, ClientID: c.CaseSys.ClientID, ClientSecret: c.CaseSys.ClientSecret, MaxUploadBytes: maxUpload, Logger: log.With("simulator", "casesys")})
	if err != nil {
		return fmt.Errorf("simulators.casesys: %w", err)
	}
	u, err := sim.Start(c.CaseSys.Listen)
	if err != nil {
		return fmt.Errorf("simulators.casesys.listen: %w", err)
	}
	s.CaseSys = sim
	s.URLs["casesys"] = u
	s.closers = append(s.closers, sim.Close)
	return nil
}

func startEPJ(c config.Simulators, s *Simulators, log *slog.Logger) error {
	if c.EPJ == nil {
		return nil
	}
	var maxBody int64
	if c.EPJ.MaxUpload != "" {
		n, err := config.ParseBytes(c.EPJ.MaxUpload) // checked by config.Validate
		if err != nil {
			return fmt.Errorf("simulators.epj.max_upload: %w", err)
		}
		maxBody = n
	}
	sim, err := epjsim.New(epjsim.Config{DataDir: c.EPJ.DataDir, ClientID: c.EPJ.ClientID, ClientSecret: c.EPJ.ClientSecret, MaxBodyBytes: maxBody})
	if err != nil {
		return fmt.Errorf("simulators.epj: %w", err)
	}
	u, err := sim.Start(c.EPJ.Listen)
	if err != nil {
		return fmt.Errorf("simulators.epj.listen: %w", err)
	}
	s.EPJ = sim
	s.URLs["epj"] = u
	s.closers = append(s.closers, sim.Close)
	return nil
}

func startDigitalPost(c config.Simulators, s *Simulators, log *slog.Logger) error {
	if c.DigitalPost == nil {
		return nil
	}
	d := c.DigitalPost
	sim, err := digitalpostsim.New(digitalpostsim.Config{DataDir: d.DataDir, ClientID: d.ClientID, ClientSecret: d.ClientSecret, Exempt: d.Exempt,
		Logger: log.With("simulator", "digitalpost")})
	if err != nil {
		return fmt.Errorf("simulators.digitalpost: %w", err)
	}
	u, err := sim.Start(d.Listen)
	if err != nil {
		return fmt.Errorf("simulators.digitalpost.listen: %w", err)
	}
	s.DigitalPost = sim
	s.URLs["digitalpost"] = u
	s.closers = append(s.closers, sim.Close)
	return nil
}
