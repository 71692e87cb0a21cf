package browser_test

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/chromedp/chromedp"

	"github.com/wsroute/wsroute"
)

const (
	browserKeyID  = "AKIAWSROUTEBROWSER01"
	browserSecret = "browser/test+secret/0123456789abcdefghij"
	emptyHash     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// iamPage connects to the URL the server put in it, asks "whoami", and shows
// the answer, or how the connection ended.
var iamPage = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>IAM</title></head><body>
<p id="state">connecting</p><p id="answer"></p>
<script>
const ws = new WebSocket({{.URL}});
ws.onopen = () => { document.getElementById("state").textContent = "open"; ws.send(JSON.stringify({action: "whoami"})); };
ws.onmessage = (e) => { document.getElementById("answer").textContent = e.data; };
ws.onclose = (e) => { document.getElementById("state").textContent = "closed " + e.code; };
</script></body></html>`))

// TestPresignedURLInBrowser: the page's server presigns the upgrade URL with
// the AWS SDK's v4 signer (the browser never sees the secret); Chromium
// connects with it and the connection carries the caller's identity. The
// same page with an unsigned URL, or one whose signature is altered, is
// refused, and $connect never runs for it.
func TestPresignedURLInBrowser(t *testing.T) {
	requireChromium(t)

	connects := make(chan *wsroute.Request, 8)
	r, err := wsroute.New(&wsroute.Options{
		Stage: "prod",
		IAM: &wsroute.IAMAuth{Credentials: map[string]wsroute.IAMCredential{
			browserKeyID: {SecretAccessKey: browserSecret, UserARN: "arn:aws:iam::123456789012:user/browser"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		connects <- req
		return nil, nil
	})
	r.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		id := req.RequestContext.Identity
		return &wsroute.Response{Body: id.AccessKey + " " + id.UserARN}, nil
	})

	mux := http.NewServeMux()
	mux.Handle("/ws", r)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		u := "ws://" + req.Host + "/ws"
		if req.URL.Path != "/unsigned" {
			signReq, _ := http.NewRequestWithContext(req.Context(), http.MethodGet, "http://"+req.Host+"/ws?X-Amz-Expires=300", nil)
			signed, _, err := v4.NewSigner().PresignHTTP(req.Context(),
				aws.Credentials{AccessKeyID: browserKeyID, SecretAccessKey: browserSecret},
				signReq, emptyHash, "execute-api", "eu-west-1", time.Now())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			u = "ws" + strings.TrimPrefix(signed, "http")
			if req.URL.Path == "/tampered" {
				u += "&stage=dev"
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = iamPage.Execute(w, struct{ URL string }{u})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		_ = r.Shutdown(ctx)
		srv.Close()
	})
	browser := startBrowser(t)

	p := newPage(t, browser, "signed")
	p.do("opening the page", chromedp.Navigate(srv.URL+"/"))
	p.waitFor("the answer", fmt.Sprintf(`document.getElementById("answer").textContent === %q`,
		browserKeyID+" arn:aws:iam::123456789012:user/browser"))
	select {
	case ev := <-connects:
		if ev.RequestContext.Identity.AccessKey != browserKeyID || ev.QueryStringParameters["X-Amz-Signature"] == "" {
			t.Errorf("$connect saw identity %+v and query %v", ev.RequestContext.Identity, ev.QueryStringParameters)
		}
	case <-time.After(stepTimeout):
		t.Fatal("$connect did not run")
	}

	for _, path := range []string{"/unsigned", "/tampered"} {
		q := newPage(t, browser, path)
		q.do("opening the page", chromedp.Navigate(srv.URL+path))
		// A refused handshake is, to a page, a close with 1006.
		q.waitFor("the refusal", `document.getElementById("state").textContent === "closed 1006"`)
	}
	select {
	case ev := <-connects:
		t.Errorf("$connect ran for a refused upgrade: %v", ev.QueryStringParameters)
	default:
	}
	p.checkNoErrors()
}
