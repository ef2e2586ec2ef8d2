package crdt_test

import (
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
)

func TestDefaultPolicies(t *testing.T) {
	p := crdt.DefaultPolicies()
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultPolicies().Validate() = %v", err)
	}
	specs := crdt.PolicySpecs()
	if got, want := len(p), len(specs); got != want {
		t.Errorf("len(DefaultPolicies()) = %d, want %d (one per spec)", got, want)
	}
	for _, s := range specs {
		if s.Doc == "" {
			t.Errorf("policy %s has no documentation", s.Name)
		}
	}
	durations := []struct {
		name string
		want time.Duration
	}{
		{"reset.window", 72 * time.Hour},
		{"reset.min_membership", 7 * 24 * time.Hour},
		{"proposal.period", 7 * 24 * time.Hour},
		{"charter.term", 365 * 24 * time.Hour},
		{"charter.renewal_notice", 30 * 24 * time.Hour},
		{"signals.silent_after", 30 * 24 * time.Hour},
	}
	for _, tt := range durations {
		if got := p.Duration(tt.name); got != tt.want {
			t.Errorf("Duration(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	ints := []struct {
		name string
		want int
	}{{"reset.quorum", 3}, {"role.term_limit", 2}, {"ledger.segment_changes", 2000}}
	for _, tt := range ints {
		if got := p.Int(tt.name); got != tt.want {
			t.Errorf("Int(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
	floats := []struct {
		name string
		want float64
	}{{"proposal.quorum", 0.5}, {"proposal.threshold", 0.5}, {"credit.limit", 20}}
	for _, tt := range floats {
		if got := p.Float(tt.name); got != tt.want {
			t.Errorf("Float(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPoliciesSet(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"reset.quorum", "5", true},
		{"reset.quorum", " 4 ", true},
		{"reset.quorum", "1", false},
		{"reset.quorum", "3.5", false},
		{"reset.quorum", "three", false},
		{"reset.quorum", "", false},
		{"reset.window", "48h", true},
		{"reset.window", "1h30m", true},
		{"reset.window", "3d", false},
		{"reset.window", "-72h", false},
		{"reset.window", "30s", false},
		{"reset.window", "100000h", false},
		{"reset.min_membership", "0h", false},
		{"proposal.period", "336h", true},
		{"proposal.quorum", "0.66", true},
		{"proposal.quorum", "1", true},
		{"proposal.quorum", "0", false},
		{"proposal.quorum", "1.5", false},
		{"proposal.quorum", "NaN", false},
		{"proposal.quorum", "50%", false},
		{"proposal.threshold", "0.75", true},
		{"charter.term", "4380h", true},
		{"charter.renewal_notice", "week", false},
		{"role.term_limit", "1", true},
		{"role.term_limit", "0", false},
		{"ledger.segment_changes", "5000", true},
		{"ledger.segment_changes", "10", false},
		{"signals.silent_after", "336h", true},
		{"credit.limit", "0", true},
		{"credit.limit", "40.5", true},
		{"credit.limit", "-1", false},
		{"credit.limit", "Inf", false},
		{"reset.quorums", "3", false},
		{"", "3", false},
		{"Reset.Quorum", "3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			p := crdt.DefaultPolicies()
			before := p[tt.name]
			err := p.Set(tt.name, tt.value)
			if tt.ok {
				if err != nil {
					t.Fatalf("Set(%q, %q) = %v, want nil", tt.name, tt.value, err)
				}
				if err := p.Validate(); err != nil {
					t.Errorf("Validate() after Set = %v", err)
				}
				return
			}
			wantRuleError(t, err, "policy", tt.name)
			if got := p[tt.name]; got != before {
				t.Errorf("after refused Set, p[%q] = %q, want %q", tt.name, got, before)
			}
		})
	}
}

func TestPoliciesAccessors(t *testing.T) {
	p := crdt.Policies{"reset.window": "48h", "reset.quorum": "4", "proposal.quorum": "0.75", "proposal.period": "garbage"}
	if got, want := p.Duration("reset.window"), 48*time.Hour; got != want {
		t.Errorf("Duration(reset.window) = %v, want %v", got, want)
	}
	if got, want := p.Int("reset.quorum"), 4; got != want {
		t.Errorf("Int(reset.quorum) = %v, want %v", got, want)
	}
	if got, want := p.Float("proposal.quorum"), 0.75; got != want {
		t.Errorf("Float(proposal.quorum) = %v, want %v", got, want)
	}
	// Invalid or missing values fall back to the default; unknown names give 0.
	if got, want := p.Duration("proposal.period"), 168*time.Hour; got != want {
		t.Errorf("Duration(invalid proposal.period) = %v, want default %v", got, want)
	}
	if got, want := p.Int("role.term_limit"), 2; got != want {
		t.Errorf("Int(missing role.term_limit) = %v, want default %v", got, want)
	}
	if got := p.Duration("no.such"); got != 0 {
		t.Errorf("Duration(unknown) = %v, want 0", got)
	}
	var nilP crdt.Policies
	if err := nilP.Set("reset.quorum", "3"); err == nil {
		t.Errorf("nil Policies.Set() = nil, want an error")
	}
	if got, want := nilP.Int("reset.quorum"), 3; got != want {
		t.Errorf("nil Policies.Int(reset.quorum) = %d, want %d", got, want)
	}
}
