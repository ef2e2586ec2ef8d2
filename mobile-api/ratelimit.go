package mobileapi

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// Bounds of the per-address limiter of the identity endpoints.
const (
	// limiterIdle is how long an address's bucket is kept after its last
	// request; by then it would be full again anyway.
	limiterIdle = 10 * time.Minute
	// defaultLimiterMax is the hard bound on the addresses tracked at once
	// (Options.IdentityAddresses).
	defaultLimiterMax = 4096
)

// limiterStore is a token bucket per client address, bounded: buckets
// idle for limiterIdle are dropped, and at most max addresses are tracked;
// when full, the idle ones go first, then the least recently seen one.
// An address evicted early starts again with a full bucket, which only
// someone who really sends from that many addresses can use.
type limiterStore struct {
	rate  rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucketEntry
}

type bucketEntry struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

var _ middleware.RateLimiterStore = (*limiterStore)(nil)

func newLimiterStore(perSecond float64, burst, max int) *limiterStore {
	if max <= 0 {
		max = defaultLimiterMax
	}
	return &limiterStore{rate: rate.Limit(perSecond), burst: burst, max: max, now: time.Now, buckets: make(map[string]*bucketEntry)}
}

// Allow implements middleware.RateLimiterStore.
func (s *limiterStore) Allow(id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e, ok := s.buckets[id]
	if !ok {
		if len(s.buckets) >= s.max {
			s.evict(now)
		}
		e = &bucketEntry{lim: rate.NewLimiter(s.rate, s.burst)}
		s.buckets[id] = e
	}
	e.lastSeen = now
	return e.lim.AllowN(now, 1), nil
}

// evict makes room for one more address: it drops every idle bucket and,
// if none was idle, the least recently seen one. s.mu held.
func (s *limiterStore) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for id, e := range s.buckets {
		if now.Sub(e.lastSeen) > limiterIdle {
			delete(s.buckets, id)
			continue
		}
		if oldest == "" || e.lastSeen.Before(oldestAt) {
			oldest, oldestAt = id, e.lastSeen
		}
	}
	if len(s.buckets) >= s.max {
		delete(s.buckets, oldest)
	}
}

// size is the number of addresses tracked.
func (s *limiterStore) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buckets)
}

// ipExtractor tells echo where a request comes from: the connection's
// remote address, unless trusted names proxies (CIDRs or single
// addresses), in which case X-Forwarded-For is believed for requests
// that come through those proxies only.
func ipExtractor(trusted []string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, t := range trusted {
		t = strings.TrimSpace(t)
		if !strings.Contains(t, "/") {
			ip := net.ParseIP(t)
			if ip == nil {
				return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR", t)
			}
			bits := 128
			if ip.To4() != nil {
				bits = 32
			}
			t = fmt.Sprintf("%s/%d", ip, bits)
		}
		_, n, err := net.ParseCIDR(t)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR", t)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}
