package sandbox

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Latency is the distribution of the time a write stays PENDING.
type Latency struct {
	kind     string // fixed, uniform, lognormal
	min, max time.Duration
	median   time.Duration
	sigma    float64
}

// DefaultLatency is the sandbox's latency when none is configured.
const DefaultLatency = "lognormal:median=1s,p99=6s"

// ParseLatency reads a latency distribution:
//
//	fixed:2s
//	uniform:1s-5s
//	lognormal:median=2s,p99=30s
func ParseLatency(s string) (Latency, error) {
	kind, args, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Latency{}, fmt.Errorf("latency %q: use fixed:2s, uniform:1s-5s or lognormal:median=2s,p99=30s", s)
	}
	switch kind {
	case "fixed":
		d, err := time.ParseDuration(args)
		if err != nil || d < 0 {
			return Latency{}, fmt.Errorf("latency %q: %q is not a duration", s, args)
		}
		return Latency{kind: kind, min: d, max: d}, nil
	case "uniform":
		lo, hi, ok := strings.Cut(args, "-")
		min, err1 := time.ParseDuration(lo)
		max, err2 := time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil || min < 0 || max < min {
			return Latency{}, fmt.Errorf("latency %q: use uniform:MIN-MAX, e.g. uniform:1s-5s", s)
		}
		return Latency{kind: kind, min: min, max: max}, nil
	case "lognormal":
		var median, p99 time.Duration
		for _, part := range strings.Split(args, ",") {
			k, v, _ := strings.Cut(part, "=")
			d, err := time.ParseDuration(v)
			if err != nil {
				return Latency{}, fmt.Errorf("latency %q: %q is not a duration", s, v)
			}
			switch k {
			case "median":
				median = d
			case "p99":
				p99 = d
			default:
				return Latency{}, fmt.Errorf("latency %q: unknown parameter %q; use median and p99", s, k)
			}
		}
		if median <= 0 || p99 < median {
			return Latency{}, fmt.Errorf("latency %q: need 0 < median <= p99", s)
		}
		// p99 of a log-normal is median * exp(2.326 sigma).
		sigma := math.Log(float64(p99)/float64(median)) / 2.3263
		return Latency{kind: kind, median: median, sigma: sigma}, nil
	}
	return Latency{}, fmt.Errorf("latency %q: unknown distribution %q; use fixed, uniform or lognormal", s, kind)
}

// sample draws one latency.
func (l Latency) sample(rng *rand.Rand) time.Duration {
	switch l.kind {
	case "uniform":
		if l.max == l.min {
			return l.min
		}
		return l.min + time.Duration(rng.Int64N(int64(l.max-l.min)))
	case "lognormal":
		return time.Duration(float64(l.median) * math.Exp(l.sigma*rng.NormFloat64()))
	default:
		return l.min
	}
}

func (l Latency) String() string {
	switch l.kind {
	case "uniform":
		return fmt.Sprintf("uniform:%v-%v", l.min, l.max)
	case "lognormal":
		return fmt.Sprintf("lognormal:median=%v,sigma=%.2f", l.median, l.sigma)
	default:
		return fmt.Sprintf("fixed:%v", l.min)
	}
}
