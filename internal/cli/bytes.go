package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes reads a size: plain bytes or with a suffix KiB, MiB, GiB (or KB, MB, GB, taken
// as the same powers of two). "" is 0. weft's --memory-budget and weft-loadtest's sizes read
// it, so that one spelling works for both.
func ParseBytes(v string) (int64, error) {
	in := v
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	// Written as !(… < 2^63) so that NaN, ±Inf and sizes an int64 cannot hold are refused too.
	if err != nil || n < 0 || !(n*float64(mult) < 1<<63) {
		return 0, fmt.Errorf("%q is not a size like 512MiB or 2GiB", in)
	}
	return int64(n * float64(mult)), nil
}
