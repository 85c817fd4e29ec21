package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUOf returns the user+system CPU time process pid has used so far
// (Linux /proc, 100 Hz ticks); 0 if it cannot be read.
func CPUOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return time.Duration(u+s) * 10 * time.Millisecond
}
