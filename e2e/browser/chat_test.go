// Package browser_test runs the chat example's page in a real headless
// browser: Debian's Chromium at /usr/bin/chromium, driven with chromedp,
// against the chat application on an httptest server on 127.0.0.1.
//
// Without Chromium the test is skipped, except when the environment variable
// CI is set: CI must never skip it (.ci/install-packages installs Chromium).
// Set WSROUTE_SCREENSHOT_DIR to keep the screenshot it takes.
package browser_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wsroute/wsroute/examples/chat/chatapp"
	"github.com/wsroute/wsroute/internal/leakcheck"
	"github.com/wsroute/wsroute/wsroutetest"
)

const chromiumPath = "/usr/bin/chromium"

// Bounds on every wait: one step, and the whole browser session (the browser
// is killed when it passes).
const (
	stepTimeout    = 15 * time.Second
	sessionTimeout = 2 * time.Minute
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// requireChromium skips the test on a machine without Chromium, and fails it
// on CI.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium is missing at %s (%v): CI must run the browser test; .ci/install-packages installs Debian's chromium", chromiumPath, err)
		}
		t.Skipf("Chromium is missing at %s: install Debian's chromium (apt-get install chromium) to run the browser test", chromiumPath)
	}
}

// startBrowser starts a headless Chromium with a fresh profile and returns
// its context. The browser is killed when the test ends or after
// sessionTimeout, whichever comes first.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	watchdog := time.AfterFunc(sessionTimeout, func() {
		t.Errorf("browser session passed %v: killing the browser", sessionTimeout)
		cancelAlloc()
	})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			watchdog.Stop()
			cctx, c := context.WithTimeout(ctx, 10*time.Second)
			_ = chromedp.Cancel(cctx) // closes the browser gracefully
			c()
			cancel()
			cancelAlloc() // waits for the process to exit
		})
	}
	t.Cleanup(stop)
	// The first Run starts the browser; it must not have a timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// page is one browser tab, in a browser context of its own (its own cookies
// and storage, as another person's browser), for one user of the chat.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu   sync.Mutex
	errs []string // JavaScript exceptions and console errors
}

func newPage(t *testing.T, browser context.Context, name string) *page {
	t.Helper()
	p := &page{t: t, name: name}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.onEvent))
	t.Cleanup(cancel)
	p.ctx = ctx
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	return p
}

// onEvent records JavaScript exceptions and console errors. It runs on the
// tab's reading goroutine and must return fast.
func (p *page) onEvent(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value))
		}
		msg = "console.error: " + strings.Join(args, " ")
	default:
		return
	}
	p.mu.Lock()
	p.errs = append(p.errs, msg)
	p.mu.Unlock()
}

// do runs actions in the tab, failing the test after stepTimeout.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v\n%s", p.name, what, err, p.dump())
	}
}

// waitFor waits until the JavaScript expression is truthy.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	p.do("waiting for "+what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(stepTimeout-time.Second)))
}

// dump describes the page's state for failure messages.
func (p *page) dump() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		status: document.getElementById("status").textContent,
		me: document.getElementById("me-name").textContent,
		error: document.getElementById("error").hidden ? "" : document.getElementById("error-text").textContent,
		title: document.getElementById("conv-title").textContent,
		messages: [...document.querySelectorAll("#messages li")].map(li => li.textContent),
	})`))
	if err != nil {
		s = "(page state unavailable: " + err.Error() + ")"
	}
	return "page state: " + s
}

func (p *page) checkNoErrors() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("%s: %s", p.name, e)
	}
}

func (p *page) register(user string) {
	p.t.Helper()
	p.do("registering "+user,
		chromedp.SendKeys(chromedp.ID("user-id"), user),
		chromedp.Click(chromedp.ID("register-btn")))
	p.waitFor("registration", fmt.Sprintf(`document.getElementById("me-name").textContent === %q && !document.getElementById("me").hidden`, user))
}

func (p *page) send(text string) {
	p.t.Helper()
	p.do("sending "+strconv.Quote(text),
		chromedp.SendKeys(chromedp.ID("message"), text),
		chromedp.Click(chromedp.ID("send-btn")))
}

func (p *page) join(room string) {
	p.t.Helper()
	p.do("joining "+room,
		chromedp.SendKeys(chromedp.ID("room-name"), room),
		chromedp.Click(chromedp.ID("join-btn")))
	p.waitFor("the room to open", fmt.Sprintf(`document.getElementById("conv-title").textContent === %q`, "#"+room))
}

// messageShown is a JavaScript expression: the open conversation shows a
// message with this sender (as the page labels it) and text.
func messageShown(from, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].some(li =>
		li.querySelector(".from")?.textContent === %q && li.querySelector(".text")?.textContent === %q)`, from, text)
}

func TestChatInBrowser(t *testing.T) {
	requireChromium(t)

	app, err := chatapp.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := wsroutetest.NewServer(t, app.Router(), &wsroutetest.ServerOptions{
		Handler: app.Handler(),
		Path:    chatapp.EndpointPath,
	})
	browser := startBrowser(t)

	alice := newPage(t, browser, "alice")
	bob := newPage(t, browser, "bob")
	for _, p := range []*page{alice, bob} {
		p.do("opening the page", chromedp.Navigate(srv.HTTP.URL+"/"))
		p.waitFor("the connection", `document.getElementById("status").classList.contains("connected")`)
	}

	// Two users register and see each other online.
	alice.register("alice")
	bob.register("bob")
	alice.waitFor("bob online", `document.querySelector('#online li[data-user="bob"]') !== null`)
	bob.waitFor("alice online", `document.querySelector('#online li[data-user="alice"]') !== null`)

	// A private message, from the presence list.
	alice.do("opening a chat with bob", chromedp.Click(chromedp.CSS(`#online li[data-user="bob"]`)))
	alice.send("Hi Bob, it's Alice")
	alice.waitFor("her own message", messageShown("You", "Hi Bob, it's Alice"))
	bob.waitFor("the unread badge", `document.querySelector('#dms li[data-conv="@alice"] .badge')?.textContent === "1"`)
	bob.do("opening the chat with alice", chromedp.Click(chromedp.CSS(`#dms li[data-conv="@alice"]`)))
	bob.waitFor("alice's private message", messageShown("alice", "Hi Bob, it's Alice"))
	bob.send("Hello Alice!")
	alice.waitFor("bob's answer", messageShown("bob", "Hello Alice!"))

	// A room: both join, bob writes, both see it.
	alice.join("lobby")
	bob.join("lobby")
	alice.waitFor("bob joining", `[...document.querySelectorAll("#messages li.system")].some(li => li.textContent === "bob joined #lobby.")`)
	alice.waitFor("the member list", `document.getElementById("conv-sub").textContent === "2 members: alice, bob"`)
	bob.send("Hello, lobby!")
	bob.waitFor("his own room message", messageShown("You", "Hello, lobby!"))
	alice.waitFor("bob's room message", messageShown("bob", "Hello, lobby!"))
	alice.send("Welcome, Bob.")
	bob.waitFor("alice's room message", messageShown("alice", "Welcome, Bob."))

	// A private message to a user who is not online shows the error.
	alice.do("opening a chat with carol",
		chromedp.SendKeys(chromedp.ID("dm-user"), "carol"),
		chromedp.Click(chromedp.ID("dm-btn")))
	alice.send("Are you there, Carol?")
	const unknown = `No user "carol" is online.`
	alice.waitFor("the error banner", fmt.Sprintf(`!document.getElementById("error").hidden && document.getElementById("error-text").textContent === %q`, unknown))
	alice.waitFor("the error in the conversation", fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg.error")].some(li => li.textContent === %q)`, unknown))

	// Back to the room for the screenshot: the conversation, the presence
	// list, the rooms and chats, and the error banner.
	alice.do("going back to the lobby", chromedp.Click(chromedp.CSS(`#rooms li[data-conv="#lobby"]`)))
	alice.waitFor("the lobby", `document.getElementById("conv-title").textContent === "#lobby"`)
	saveScreenshot(t, alice, "chat.png")

	// Connection lost: the server drops alice's connection; the page
	// reconnects, registers alice again and takes her seat in the lobby.
	old, ok := app.UserConnection("alice")
	if !ok {
		t.Fatal("alice has no connection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if err := app.Router().Connections().DeleteConnection(ctx, old); err != nil {
		t.Fatalf("DeleteConnection: %v", err)
	}
	alice.waitFor("the connection to come back", `document.getElementById("status").classList.contains("connected") &&
		[...document.querySelectorAll("#messages li.system")].some(li => li.textContent === "Reconnected.")`)
	alice.waitFor("registration again", `document.getElementById("me-name").textContent === "alice" && !document.getElementById("me").hidden`)
	bob.waitFor("alice leaving and rejoining", `[...document.querySelectorAll("#messages li.system")].filter(li => li.textContent === "alice joined #lobby.").length === 1 &&
		[...document.querySelectorAll("#messages li.system")].some(li => li.textContent === "alice left #lobby.")`)
	if now, ok := app.UserConnection("alice"); !ok || now == old {
		t.Fatalf("alice's connection after the reconnect: %q (ok=%v), before %q", now, ok, old)
	}
	bob.send("Welcome back.")
	alice.waitFor("a room message after the reconnect", messageShown("bob", "Welcome back."))

	// A notice pushed through the ConnectionManager, as the management API
	// would, shows as an information banner.
	now, _ := app.UserConnection("alice")
	if err := app.Router().Connections().PostToConnection(ctx, now, []byte(`{"type":"notice","message":"Maintenance at noon."}`)); err != nil {
		t.Fatalf("PostToConnection: %v", err)
	}
	alice.waitFor("the notice", `!document.getElementById("error").hidden && document.getElementById("error").classList.contains("info") &&
		document.getElementById("error-text").textContent === "Maintenance at noon."`)
	saveScreenshot(t, bob, "chat-bob.png")

	alice.checkNoErrors()
	bob.checkNoErrors()
}

// saveScreenshot saves a PNG of the page under t.TempDir(), and copies it to
// $WSROUTE_SCREENSHOT_DIR when that is set.
func saveScreenshot(t *testing.T, p *page, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	if dir := os.Getenv("WSROUTE_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot copied to %s", filepath.Join(dir, name))
	}
}
