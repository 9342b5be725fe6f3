package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuTimes returns the CPU seconds (user + system) each process has used
// so far, plus pipebench's own as "pipebench". A process that is gone (or
// a system without /proc) is left out.
func cpuTimes(pids map[string]int) map[string]float64 {
	out := map[string]float64{}
	if t, err := cpuSeconds(os.Getpid()); err == nil {
		out["pipebench"] = t
	}
	for name, pid := range pids {
		if t, err := cpuSeconds(pid); err == nil {
			out[name] = t
		}
	}
	return out
}

// cpuSeconds reads the CPU time of pid from /proc/<pid>/stat: its own
// (utime, stime) and that of its children it waited for (cutime, cstime),
// so the forks Redis makes to rewrite its append-only file count as
// Redis's (a child still running when a step ends counts in the step it
// ends in).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat sums utime, stime, cutime and cstime (fields 14 to 17) of a
// stat line. The command name (field 2) may hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseStat(line string) (float64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 15 {
		return 0, fmt.Errorf("short stat line %q", line)
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64) // cutime and cstime are signed
		if err != nil {
			return 0, fmt.Errorf("stat times not numbers in %q", line)
		}
		ticks += n
	}
	return float64(ticks) / clockTicks, nil
}
