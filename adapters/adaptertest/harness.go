package adaptertest

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samhub/samhub/adapters"
	"github.com/samhub/samhub/pipeline/letter"
)

// Env is what the suite shares with a harness: the state store and data
// directory every instance of one test gets, as the hub gives an adapter
// instance the same ones across restarts. A harness may use State to make
// the store fail (State.SetDown, State.FailNextWrites) or to read what the
// adapter keeps (a cursor).
type Env struct {
	Name    string // the instance name the suite builds, the type's name
	State   *State
	DataDir string
}

// Harness connects one adapter type to its system for the suite: a
// simulator or an in-process server, started by the harness's constructor
// and stopped with t.Cleanup. A type that is a sink supplies a
// SinkHarness, a source a SourceHarness, one that is both, both.
type Harness interface {
	// Block is the configuration block (without type) of an instance
	// against the harness's system, with short poll intervals.
	Block() map[string]any
}

// SinkHarness is what the sink checks need.
type SinkHarness interface {
	Harness
	// Letter returns a letter the destination accepts, distinct for each
	// n, addressed (To) as the pipeline would address it.
	Letter(n int) *letter.Letter
	// Stored counts the objects the destination holds for l (documents,
	// resources, files, distinct messages).
	Stored(t testing.TB, l *letter.Letter) int
	// LoseNextReply makes the destination save the next delivery and its
	// answer never reach the sink (a connection dropped after commit).
	LoseNextReply(t testing.TB)
	// Faults lists failures the system can be made to show, with the
	// class the sink must give each; at least one of each class.
	Faults() []Fault
}

// Fault is one failure a harness can make the destination show.
type Fault struct {
	Name  string
	Class adapters.Class
	// Arm makes the next delivery of l fail this way. It returns the
	// letter to deliver (l, or a copy changed to cause the fault) and a
	// function that clears the fault.
	Arm func(t testing.TB, l *letter.Letter) (*letter.Letter, func())
}

// SourceHarness is what the source checks need.
type SourceHarness interface {
	Harness
	// Put places input n in the system (a file, a mail, an outbox entry,
	// a note) for the source to read.
	Put(t testing.TB, n int)
	// Item tells which input a published letter was made from.
	Item(l *letter.Letter) (n int, ok bool)
	// Acknowledged reports whether the source told its system it is done
	// with input n (moved, marked sent, cursor past it).
	Acknowledged(t testing.TB, n int) bool
}

// NewHarness starts a harness for one test.
type NewHarness func(t *testing.T, env *Env) Harness

var (
	hmu       sync.Mutex
	harnesses = map[string]NewHarness{}
)

// Register supplies the conformance harness of an adapter type. Adapter
// packages call it in init, beside their adapters.Register* call.
func Register(typeName string, h NewHarness) {
	hmu.Lock()
	defer hmu.Unlock()
	if _, dup := harnesses[typeName]; dup {
		panic("adaptertest: harness registered twice: " + typeName)
	}
	harnesses[typeName] = h
}

func harnessFor(typeName string) (NewHarness, bool) {
	hmu.Lock()
	defer hmu.Unlock()
	h, ok := harnesses[typeName]
	return h, ok
}

// Conformance runs the suite for every registered adapter type, each
// against the harness its package registered; a type without a harness
// fails. Link the adapters in (internal/plugins) before calling it.
func Conformance(t *testing.T) {
	names := adapters.Types()
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("no adapter type is registered: import internal/plugins")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) { ConformType(t, name) })
	}
}

// ConformType runs the suite for one registered type.
func ConformType(t *testing.T, name string) {
	typ, ok := adapters.TypeNamed(name)
	if !ok {
		t.Fatalf("adapter type %q is not registered", name)
	}
	newH, ok := harnessFor(name)
	if !ok {
		t.Fatalf("adapter type %q has no conformance harness: its package must call adaptertest.Register(%q, …) (see adapters/adaptertest)", name, name)
	}
	if typ.Role&adapters.RoleSink != 0 {
		t.Run("sink", func(t *testing.T) {
			env := newEnv(t, name)
			h, ok := newH(t, env).(SinkHarness)
			if !ok {
				t.Fatalf("%s is a sink type but its harness is no SinkHarness", name)
			}
			sinkSuite(t, env, h)
		})
	}
	if typ.Role&adapters.RoleSource != 0 {
		t.Run("source", func(t *testing.T) {
			env := newEnv(t, name)
			h, ok := newH(t, env).(SourceHarness)
			if !ok {
				t.Fatalf("%s is a source type but its harness is no SourceHarness", name)
			}
			sourceSuite(t, env, h)
		})
	}
}

func newEnv(t *testing.T, name string) *Env {
	return &Env{Name: name, State: NewState(), DataDir: t.TempDir()}
}

// build makes an instance of the type from the harness's block, as the
// hub does; each call is a new "process" over the same state and data.
func build(t *testing.T, env *Env, h Harness) adapters.Instance {
	t.Helper()
	inst, err := adapters.BuildInstance(env.Name, adapters.Deps{
		Name: env.Name, Logger: slog.New(slog.DiscardHandler), DataDir: env.DataDir, State: env.State,
		Metrics: prometheus.NewRegistry(), Now: time.Now,
	}, h.Block())
	if err != nil {
		t.Fatalf("build %s from the harness's block: %v", env.Name, err)
	}
	t.Cleanup(func() {
		if c, ok := inst.Value().(interface{ Close() error }); ok {
			_ = c.Close()
		}
	})
	return inst
}

// eventually polls cond until it holds or the deadline passes. Deadlines
// are generous: the machines running the suite are small and shared.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeClass(err error) string {
	class, reason, code := adapters.Classify(err)
	return fmt.Sprintf("%s %s (%s)", class, code, reason)
}
