package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// What each process spent on a measurement, read from /proc, so that a
// rate can be told apart from its noise. On two cores the bench client,
// dockerd and dockgate share the CPUs, and so does whatever else runs on
// the machine: a rate measured while something else took a core says
// little about dockgate. CPU time per request does not depend on who else
// runs nearly as much, and "other" says how busy the rest of the machine
// was (about 0 on an idle machine).

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpuSample is a reading of the CPU time used so far.
type cpuSample struct {
	at                                      time.Time
	machine, self, dockerd, dockgate, relay time.Duration
	err                                     error
}

// cpuUse is the CPU time used between two samples.
type cpuUse struct {
	wall, self, dockerd, dockgate, relay, other time.Duration
	err                                         error
}

// cpuSample reads the machine, the bench itself, dockerd, dockgate and,
// when relayPid is not 0, the bare relay.
func (b *bench) cpuSample(relayPid int) cpuSample {
	s := cpuSample{at: time.Now()}
	var errs [5]error
	s.machine, errs[0] = machineBusy()
	s.self, errs[1] = procCPU("self")
	s.dockerd, errs[2] = procCPU(strconv.Itoa(b.dockerdPid))
	s.dockgate, errs[3] = procCPU(strconv.Itoa(b.pid))
	if relayPid != 0 {
		s.relay, errs[4] = procCPU(strconv.Itoa(relayPid))
	}
	for _, err := range errs {
		if err != nil && s.err == nil {
			s.err = err
		}
	}
	return s
}

// addCPU adds what was used between before and after to t.
func (t *tally) addCPU(before, after cpuSample) {
	if t.cpu.err == nil {
		t.cpu.err = cmpOr(before.err, after.err)
	}
	u := &t.cpu
	u.wall += after.at.Sub(before.at)
	u.self += after.self - before.self
	u.dockerd += after.dockerd - before.dockerd
	u.dockgate += after.dockgate - before.dockgate
	u.relay += after.relay - before.relay
	ours := (after.self - before.self) + (after.dockerd - before.dockerd) + (after.dockgate - before.dockgate) + (after.relay - before.relay)
	u.other += max(0, after.machine-before.machine-ours)
}

func cmpOr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// cpuRows are the CPU rows of a rate measurement at concurrency c that
// every side has: what the bench client and dockerd spent per request on
// each side, and how busy the rest of the machine was meanwhile. What the
// proxies themselves spent is in relayCPURows.
func (b *bench) cpuRows(name string, direct, proxied *tally) []row {
	pct := func(u *cpuUse) float64 {
		if u.wall <= 0 {
			return 0
		}
		return 100 * float64(u.other) / float64(u.wall)
	}
	rest := func(t *tally) float64 {
		return round(t.cpuPerOp(func(u *cpuUse) time.Duration { return u.self + u.dockerd }))
	}
	dr, pr := rest(direct), rest(proxied)
	od, op := round(pct(&direct.cpu)), round(pct(&proxied.cpu))
	rows := []row{
		{Name: name + " client+dockerd CPU per request", Unit: "µs", Direct: &dr, Dockgate: pr},
		{Name: name + " CPU used by other processes", Unit: "% of a CPU", Direct: &od, Dockgate: op},
	}
	if err := cmpOr(direct.cpu.err, proxied.cpu.err); err != nil {
		for i := range rows {
			rows[i].Error = err.Error()
		}
	}
	return rows
}

// cpuPerOp is the CPU time of one process (of picks it from the use) per
// operation t counted, in µs.
func (t *tally) cpuPerOp(of func(*cpuUse) time.Duration) float64 {
	if t.ops == 0 {
		return 0
	}
	return float64(of(&t.cpu)) / 1e3 / float64(t.ops)
}

// procCPU is the user+system CPU time of /proc/<pid> (pid may be "self").
func procCPU(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (state is field 3, utime 14).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: %d fields", pid, len(f))
	}
	var sum int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
		}
		sum += n
	}
	return time.Duration(sum) * clockTick, nil
}

// machineBusy is the CPU time all CPUs spent on anything but idling
// (user, nice, system, irq and softirq of /proc/stat's cpu line).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var sum int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		sum += n
	}
	return time.Duration(sum) * clockTick, nil
}
