package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/samhub/samhub/internal/config"
)

// sameFlowName is the same-flow phase's name in results.phases.
const sameFlowName = "same flow as peer (1 sink)"

// measureSameFlow runs the hub on the peer's flow (peer.go): the MedCom
// drop folder to one HTTP sink, the case system, at saturation with n
// letters. It is the bench's hub (startRig: app.Start with the hub's
// settings, SyncAlways) on a store of its own, narrowed by sameFlow.
func measureSameFlow(ctx context.Context, tmp string, gen *letters, n int) (phase, error) {
	// The three-sink phases' heap must not count as this phase's memory.
	runtime.GC()
	debug.FreeOSMemory()
	dir := filepath.Join(tmp, "sameflow")
	rig, err := startRig(ctx, dir, gen, sameFlow, nil)
	if err != nil {
		return phase{}, err
	}
	defer os.RemoveAll(dir)
	defer rig.close()
	rig.oneSink = true
	if _, err := rig.run("same flow: warm-up", 5, 200, 0, 2*time.Minute); err != nil {
		return phase{}, err
	}
	return rig.run(sameFlowName, 6, n, 0, 20*time.Minute)
}

// sameFlow narrows the bench configuration to the peer's flow with the
// configuration the hub has, nothing added: only the MedCom and
// case-system adapters, only the casefile destination and the rules that
// go there alone (the default "letters-to-case"). No EPJ route, so no
// consent is needed (the municipality's own sector), and no notices, so no
// SMTP. The case-system adapter still polls its (empty) outbox, as it does
// in production; there is no setting to make it a sink only.
func sameFlow(c *config.Config) {
	const dest = "casefile"
	c.Adapters = map[string]map[string]any{"medcom": c.Adapters["medcom"], "casesys": c.Adapters["casesys"]}
	c.Destinations = map[string]config.Destination{dest: c.Destinations[dest]}
	c.Routes = slices.DeleteFunc(c.Routes, func(r config.Route) bool { return !slices.Equal(r.To, []string{dest}) })
	c.Notify = config.Notify{}
}
