package main

import (
	"errors"
	"testing"
	"time"
)

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		row    row
		target string
		pass   bool
	}{
		{"dockgate reaches 0.85 of the relay", atLeast(rate("r", "req/s", 1000, 850, nil), 0.85), "≥ 0.85×", true},
		{"dockgate short of 0.85 of the relay", atLeast(rate("r", "req/s", 1000, 849, nil), 0.85), "≥ 0.85×", false},
		{"a rate that failed to measure never passes", atLeast(rate("r", "req/s", 1000, 1000, errors.New("refused")), 0.85), "≥ 0.85×", false},
		{"a base of zero has no ratio and fails", atLeast(rate("r", "req/s", 0, 1000, nil), 0.85), "≥ 0.85×", false},
		{"p50 adds 15 µs over the relay", atMostAdded(latency("l", 100*time.Microsecond, 115*time.Microsecond, nil), 15), "≤ +15 µs", true},
		{"p50 adds 16 µs over the relay", atMostAdded(latency("l", 100*time.Microsecond, 116*time.Microsecond, nil), 15), "≤ +15 µs", false},
		{"CPU per request at the limit", atMost(row{Unit: "µs", Dockgate: 20}, 20), "≤ 20 µs", true},
		{"CPU per request over the limit", atMost(row{Unit: "µs", Dockgate: 20.5}, 20), "≤ 20 µs", false},
		{"tenant at 1.10 of root", atMostRatio(row{Ratio: ptr(1.10)}, 1.10), "≤ 1.10×", true},
		{"tenant at 1.11 of root", atMostRatio(row{Ratio: ptr(1.11)}, 1.10), "≤ 1.10×", false},
		{"a ratio row without a ratio fails", atMostRatio(row{}, 1.10), "≤ 1.10×", false},
		{"a row with an error fails however good its value", atMost(row{Unit: "ms", Dockgate: 1, Error: "no policy"}, 200), "≤ 200 ms", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.row.Target != tc.target {
				t.Errorf("target %q, want %q", tc.row.Target, tc.target)
			}
			if tc.row.Pass == nil || *tc.row.Pass != tc.pass {
				t.Errorf("pass %v, want %v", tc.row.Pass, tc.pass)
			}
		})
	}
}

func TestTallyRateIsTheMedianOfItsSlices(t *testing.T) {
	var tl tally
	// A slice that another process slowed to a tenth does not drag the
	// rate down, as a sum over the slices would.
	tl.add(1000, time.Second, nil)
	tl.add(100, time.Second, nil)
	tl.add(1200, time.Second, nil)
	if got := tl.rate(); got != 1000 {
		t.Errorf("rate %v, want the median 1000", got)
	}
	if got := (&tally{}).rate(); got != 0 {
		t.Errorf("rate of nothing measured: %v, want 0", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{3}, 3},
		{"odd count, unsorted", []float64{5, 1, 3}, 3},
		{"even count takes the upper middle", []float64{4, 1, 3, 2}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := median(tc.in); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("median reordered its input: %v", tc.in)
				}
			}
		})
	}
}

func TestRelayCPURows(t *testing.T) {
	gate := &tally{ops: 1000, cpu: cpuUse{dockgate: 60 * time.Millisecond}}
	relay := &tally{ops: 1000, cpu: cpuUse{relay: 45 * time.Millisecond}}
	rows := relayCPURows("/_ping c=16", gate, relay, true)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	abs, rel, over := rows[0], rows[1], rows[2]
	if abs.Dockgate != 60 || abs.Pass == nil || *abs.Pass {
		t.Errorf("absolute row %+v: want 60 µs, failing ≤ 20", abs)
	}
	if rel.Dockgate != 45 || rel.Target != "" {
		t.Errorf("relay row %+v: want 45 µs and no target", rel)
	}
	if over.Added == nil || *over.Added != 15 || over.Pass == nil || !*over.Pass || over.Base != baseRelay {
		t.Errorf("over-the-relay row %+v: want +15 µs against the relay, passing ≤ +20", over)
	}
	for _, r := range relayCPURows("/_ping c=1", gate, relay, false) {
		if r.Target != "" {
			t.Errorf("c=1 row %q has a target; the CPU target is taken at c=16", r.Name)
		}
	}
}

func TestSoakResult(t *testing.T) {
	for _, tc := range []struct {
		name             string
		s                soaked
		fds0, fds1       int
		rssPass, fdsPass bool
	}{
		{"flat RSS, fds back", soaked{requests: 9000, rss10: 30 << 10, rssEnd: 31 << 10}, 12, 12, true, true},
		{"RSS grew 6 MiB after the first tenth", soaked{requests: 9000, rss10: 30 << 10, rssEnd: 36 << 10}, 12, 12, false, true},
		{"a connection's fd left behind", soaked{requests: 9000, rss10: 30 << 10, rssEnd: 30 << 10}, 12, 13, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := soakResult(time.Minute, tc.s, tc.fds0, tc.fds1, nil)
			rss, fds := rows[1], rows[3]
			if *rss.Pass != tc.rssPass || *fds.Pass != tc.fdsPass {
				t.Errorf("RSS pass %v (want %v), fds pass %v (want %v)", *rss.Pass, tc.rssPass, *fds.Pass, tc.fdsPass)
			}
		})
	}
	rows := soakResult(time.Minute, soaked{rss10: 1, rssEnd: 1}, 1, 1, errors.New("GET /_ping: 502"))
	for _, r := range rows {
		if r.Error == "" || (r.Pass != nil && *r.Pass) {
			t.Errorf("row %q of a failed soak: %+v", r.Name, r)
		}
	}
}

func TestEveryMeasurementNameRuns(t *testing.T) {
	b := &bench{}
	ms := b.measures()
	if len(ms) != len(measureNames) {
		t.Fatalf("%d measurements for %d names", len(ms), len(measureNames))
	}
	for _, m := range ms {
		if m.measure == nil {
			t.Errorf("-only %s names no measurement", m.name)
		}
	}
}
