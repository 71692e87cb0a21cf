package sdk_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// AWS_IAM on $connect: the client connects with a URL presigned by the AWS
// SDK's v4 signer (as a mobile or browser client with Cognito credentials
// does); an unsigned upgrade gets API Gateway's 403. The caller's identity is
// on every event.
func Example_iam() {
	router, err := wsroute.New(&wsroute.Options{
		Stage: "prod",
		IAM: &wsroute.IAMAuth{
			Region: "eu-west-1",
			Credentials: map[string]wsroute.IAMCredential{
				"AKIAIOSFODNN7EXAMPLE": {
					SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
					AccountID:       "123456789012",
					UserARN:         "arn:aws:iam::123456789012:user/alice",
				},
			},
		},
	})
	if err != nil {
		panic(err)
	}
	router.HandleFunc("whoami", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: req.RequestContext.Identity.UserARN}, nil
	})
	srv := httptest.NewServer(router)
	defer srv.Close()
	defer router.Shutdown(context.Background())
	ctx := context.Background()

	// Presign the upgrade URL. X-Amz-Expires (required) bounds its life.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/?X-Amz-Expires=60", nil)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx,
		aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		req, "UNSIGNED-PAYLOAD", "execute-api", "eu-west-1", time.Now())
	if err != nil {
		panic(err)
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(signed, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`))
	_, got, _ := c.Read(ctx)
	fmt.Println(string(got))

	_, resp, _ := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), string(body))
	// Output:
	// arn:aws:iam::123456789012:user/alice
	// 403 MissingAuthenticationTokenException {"message":"Missing Authentication Token"}
}
