// Package browser holds only tests: they run the chat example's page in a
// real headless Chromium, driven with chromedp, against the chat application
// on 127.0.0.1. It is a module of its own so that the core module never
// requires chromedp. Run its tests with go test in this folder.
package browser
