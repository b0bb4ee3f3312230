package importer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// CacheLag is how long after a write resolves Propexo's cache shows it, per
// vendor. Propexo is not the source of truth: it shows a record once it has
// read it back from the PMS, right after the write for some PMS (the create
// pages of Rent Manager, Buildium and Propertyware REST say so) and at the
// next sync for others. Until the lag has passed, a resident not found is
// no proof that its write did not happen.
type CacheLag struct {
	// Default is the lag of every vendor not in Vendors.
	Default time.Duration
	// Vendors holds the lags that differ from Default, by vendor slug.
	Vendors map[string]time.Duration
}

// UntilSync is the lag of a vendor whose written records show only at the
// integration's next sync (Propexo's sandbox environment runs none on its
// own; POST /v1/admin/integrations/{id}/manual-sync starts one).
const UntilSync time.Duration = -1

// ParseCacheLag reads a lag: "30s" for every vendor, or a list such as
// "buildium=sync,rentmanager=0s,2m" (a bare value is the default; "sync"
// means until the next sync).
func ParseCacheLag(s string) (CacheLag, error) {
	var c CacheLag
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		vendor, value, named := strings.Cut(item, "=")
		if !named {
			value = vendor
		}
		d, err := parseLag(strings.TrimSpace(value))
		if err != nil {
			return CacheLag{}, fmt.Errorf("cache lag %q: %v; use a duration such as 30s or \"sync\", for all vendors or as vendor=value (buildium=sync,rentmanager=0s)", item, err)
		}
		if !named {
			c.Default = d
			continue
		}
		if c.Vendors == nil {
			c.Vendors = map[string]time.Duration{}
		}
		c.Vendors[strings.ToLower(strings.TrimSpace(vendor))] = d
	}
	return c, nil
}

func parseLag(s string) (time.Duration, error) {
	if strings.EqualFold(s, "sync") {
		return UntilSync, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// For is the lag of a vendor, named by its slug or its upper-case enum.
func (c CacheLag) For(vendor string) time.Duration {
	if d, ok := c.Vendors[strings.ToLower(vendor)]; ok {
		return d
	}
	return c.Default
}

func (c CacheLag) String() string {
	show := func(d time.Duration) string {
		if d == UntilSync {
			return "sync"
		}
		return d.String()
	}
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(c.Vendors)) {
		parts = append(parts, v+"="+show(c.Vendors[v]))
	}
	return strings.Join(append(parts, show(c.Default)), ",")
}
