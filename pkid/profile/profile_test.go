package profile

import (
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
	"google.golang.org/protobuf/proto"
)

func TestFromConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     *pb.PKI
		wantErr string
		check   func(t *testing.T, s *Set)
	}{
		{"nil", nil, "", func(t *testing.T, s *Set) {
			if len(s.Profiles) != 0 {
				t.Error("profiles from nil")
			}
		}},
		{"defaults", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "ca1", EnrollmentUrl: "http://ca.example/scep"}}}, "", func(t *testing.T, s *Set) {
			p := s.Profiles["ca1"]
			if p.Retry != 1000 || p.RetryInterval != 600*time.Second || p.Revocation != UseCRL || p.RefreshInterval != 24*time.Hour || p.CAIdentity != "ca1" {
				t.Errorf("defaults: %+v", p)
			}
		}},
		{"set", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "ca1", CaIdentity: "Root", EnrollmentRetry: proto.Uint32(3),
			EnrollmentRetryInterval: proto.Uint32(5), CrlUrl: "ldap://ldap.example/cn=crl?certificateRevocationList",
			CrlRefreshIntervalHours: proto.Uint32(2), CrlDisableOnDownloadFailure: true,
			RevocationCheck: pb.RevocationCheck_REVOCATION_CHECK_DISABLE}}}, "", func(t *testing.T, s *Set) {
			p := s.Profiles["ca1"]
			if p.Retry != 3 || p.RetryInterval != 5*time.Second || p.Revocation != Disable || p.RefreshInterval != 2*time.Hour || !p.DisableOnDownloadFailure || p.CAIdentity != "Root" {
				t.Errorf("got %+v", p)
			}
		}},
		{"bad name", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a.b"}}}, "must not contain", nil},
		{"dup", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a"}, {Name: "a"}}}, "duplicate", nil},
		{"retry range", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a", EnrollmentRetry: proto.Uint32(2000)}}}, "0..1080", nil},
		{"interval range", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a", EnrollmentRetryInterval: proto.Uint32(4000)}}}, "0..3600", nil},
		{"refresh range", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a", CrlRefreshIntervalHours: proto.Uint32(9000)}}}, "0..8784", nil},
		{"bad url", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a", CrlUrl: "ftp://x/y"}}}, "scheme \"ftp\"", nil},
		{"group unknown", &pb.PKI{TrustedCaGroups: []*pb.TrustedCAGroup{{Name: "g", CaProfiles: []string{"x"}}}}, "[edit security pki trusted-ca-group g] ca-profiles", nil},
		{"reenroll", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a"}}, AutoReEnrollment: []*pb.AutoReEnrollment{{Protocol: "scep", CertificateId: "c", CaProfileName: "a"}}}, "", func(t *testing.T, s *Set) {
			e := s.Enroll["c"]
			if e.TriggerPercent != 60 || e.SCEPEncryption != "des3" || e.SCEPDigest != "sha1" {
				t.Errorf("got %+v", e)
			}
		}},
		{"reenroll pct", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a"}}, AutoReEnrollment: []*pb.AutoReEnrollment{{CertificateId: "c", CaProfileName: "a", ReEnrollTriggerTimePercentage: proto.Uint32(100)}}}, "1..99", nil},
		{"reenroll profile", &pb.PKI{AutoReEnrollment: []*pb.AutoReEnrollment{{CertificateId: "c", CaProfileName: "a"}}}, "ca-profile-name", nil},
		{"reenroll acme", &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "a"}}, AutoReEnrollment: []*pb.AutoReEnrollment{{Protocol: "acme", CertificateId: "c", CaProfileName: "a"}}}, "only scep", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromConfig(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestResolve(t *testing.T) {
	s, err := FromConfig(&pb.PKI{
		CaProfiles:      []*pb.CAProfile{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		TrustedCaGroups: []*pb.TrustedCAGroup{{Name: "g", CaProfiles: []string{"c", "a"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in      []string
		want    string
		wantErr bool
	}{
		{nil, "a,b,c", false},
		{[]string{"b"}, "b", false},
		{[]string{"g", "a", "b"}, "c,a,b", false},
		{[]string{"zz"}, "", true},
	}
	for _, tt := range tests {
		got, err := s.Resolve(tt.in)
		if (err != nil) != tt.wantErr || strings.Join(got, ",") != tt.want {
			t.Errorf("Resolve(%v) = %v, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
