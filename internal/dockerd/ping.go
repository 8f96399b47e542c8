package dockerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Ping asks dockerd for /_ping and wants 200 within timeout: whether
// dockgate is ready to serve. The error says why not in words for an
// operator (the readiness probe's answer).
func (d *Client) Ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := d.request(ctx, "/_ping")
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: d.transport}).Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // drop "Get "http://docker/_ping": "
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer to /_ping within %v", timeout)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping answered %s", resp.Status)
	}
	return nil
}
