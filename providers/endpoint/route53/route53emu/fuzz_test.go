package route53emu_test

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers/endpoint/route53/route53emu"
)

// FuzzChangeBatch feeds change batch bodies to the emulator: it answers 200 or a 400 in one of Route 53's error
// shapes, never panics, and a refused batch leaves the zone as it was.
func FuzzChangeBatch(f *testing.F) {
	for _, s := range []string{
		`<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>CREATE</Action><ResourceRecordSet><Name>a.example.com.</Name><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord></ResourceRecords><TTL>60</TTL><Type>A</Type></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`,
		`<ChangeResourceRecordSetsRequest><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>w.example.com</Name><SetIdentifier>x</SetIdentifier><Weight>300</Weight><TTL>60</TTL><Type>CNAME</Type><ResourceRecords><ResourceRecord><Value>a.example.net</Value></ResourceRecord><ResourceRecord><Value>b</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`,
		`<ChangeResourceRecordSetsRequest><ChangeBatch><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>example.com.</Name><TTL>900</TTL><Type>SOA</Type><ResourceRecords><ResourceRecord><Value>x</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`,
		`<ChangeResourceRecordSetsRequest><ChangeBatch><Changes><Change><Action>CREATE</Action><ResourceRecordSet><Name>t.example.com.</Name><TTL>1</TTL><Type>TXT</Type><ResourceRecords><ResourceRecord><Value>"a\"b" c \065</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`,
		`<nope`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := route53emu.New("example.com", route53emu.Options{})
		before := len(e.RecordSets())
		req := httptest.NewRequest(http.MethodPost, "/2013-04-01/hostedzone/"+e.ZoneID()+"/rrset", strings.NewReader(body))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/route53/aws4_request")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest:
			var root struct{ XMLName xml.Name }
			if err := xml.Unmarshal(w.Body.Bytes(), &root); err != nil ||
				(root.XMLName.Local != "ErrorResponse" && root.XMLName.Local != "InvalidChangeBatch") {
				t.Fatalf("400 body %q is neither ErrorResponse nor InvalidChangeBatch", w.Body.String())
			}
			if n := len(e.RecordSets()); n != before {
				t.Fatalf("a refused batch changed the zone: %d record sets, had %d", n, before)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}
