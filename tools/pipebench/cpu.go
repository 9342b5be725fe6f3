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

// cpuSeconds reads utime and stime of pid from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat takes utime and stime (fields 14 and 15) of a stat line. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(line string) (float64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line %q", line)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat times not numbers in %q", line)
	}
	return float64(u+s) / clockTicks, nil
}
