package wsnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/wsroute/wsroute"
)

// PostToConnection sends data to a connection another node holds.
func (b *Backplane) PostToConnection(ctx context.Context, connectionID string, data []byte) error {
	_, err := b.call(ctx, connectionID, opPost, data)
	return err
}

// GetConnection describes a connection another node holds.
func (b *Backplane) GetConnection(ctx context.Context, connectionID string) (*wsroute.Connection, error) {
	body, err := b.call(ctx, connectionID, opGet, nil)
	if err != nil {
		return nil, err
	}
	c := new(wsroute.Connection)
	if err := json.Unmarshal(body, c); err != nil {
		return nil, fmt.Errorf("wsnats: malformed answer from a node: %w", err)
	}
	c.ConnectionID = connectionID
	return c, nil
}

// DeleteConnection closes a connection another node holds.
func (b *Backplane) DeleteConnection(ctx context.Context, connectionID string) error {
	_, err := b.call(ctx, connectionID, opDelete, nil)
	return err
}

// call asks the node holding connectionID to carry out op, and returns the
// body of its answer.
func (b *Backplane) call(ctx context.Context, connectionID string, op byte, data []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(connectionID) {
		return nil, wsroute.ErrGone
	}
	if b.isClosed() {
		return nil, wsroute.ErrRouterClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.RequestTimeout)
		defer cancel()
	}
	subject := b.connPrefix + connectionID
	req := make([]byte, 1+len(data))
	req[0] = op
	copy(req[1:], data)
	reconnects := b.nc.Stats().Reconnects
	msg, err := b.request(ctx, subject, req)
	if errors.Is(err, nats.ErrNoResponders) {
		// Nobody holds it, unless its node is cut off from NATS for a
		// moment: ask every node known to be alive, then once more.
		if err := b.allPresent(ctx); err != nil {
			return nil, err
		}
		msg, err = b.request(ctx, subject, req)
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, wsroute.ErrGone
		}
	}
	if err != nil {
		return nil, b.failure(ctx, err, reconnects)
	}
	return decodeReply(msg.Data)
}

func (b *Backplane) request(ctx context.Context, subject string, req []byte) (*nats.Msg, error) {
	if b.nc.Status() != nats.CONNECTED {
		return nil, fmt.Errorf("%w: NATS connection %s", wsroute.ErrBackplaneUnavailable, strings.ToLower(b.nc.Status().String()))
	}
	return b.nc.RequestWithContext(ctx, subject, req)
}

// failure maps a failed request to the error the caller gets.
func (b *Backplane) failure(ctx context.Context, err error, reconnects uint64) error {
	if errors.Is(err, wsroute.ErrBackplaneUnavailable) {
		return err
	}
	brokerTrouble := b.nc.Status() != nats.CONNECTED || b.nc.Stats().Reconnects != reconnects
	if ctx.Err() != nil {
		if brokerTrouble {
			// The request or its answer was lost with the connection.
			return fmt.Errorf("%w: NATS connection lost during the call: %w", wsroute.ErrBackplaneUnavailable, ctx.Err())
		}
		return fmt.Errorf("wsnats: the node holding the connection did not answer: %w", ctx.Err())
	}
	switch {
	case brokerTrouble,
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w: %w", wsroute.ErrBackplaneUnavailable, err)
	}
	return fmt.Errorf("wsnats: %w", err)
}

func decodeReply(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("wsnats: empty answer from a node")
	}
	switch data[0] {
	case replyOK:
		return data[1:], nil
	case replyGone:
		return nil, wsroute.ErrGone
	case replyLimit:
		return nil, wsroute.ErrLimitExceeded
	case replyTooLarge:
		return nil, wsroute.ErrPayloadTooLarge
	case replyClosed:
		return nil, wsroute.ErrGone // the node is shutting down: its connections are closing
	case replyInvalid:
		return nil, wsroute.ErrInvalidGroup
	case replyError:
		return nil, fmt.Errorf("wsnats: the node holding the connection failed: %s", data[1:])
	}
	return nil, fmt.Errorf("wsnats: unknown answer %q from a node", data[0])
}

// consume hands each message of ch to handle until the backplane closes.
func (b *Backplane) consume(ch <-chan *nats.Msg, handle func(*nats.Msg)) {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case m := <-ch:
			handle(m)
		}
	}
}

func (b *Backplane) serve(m *nats.Msg) {
	id, ok := strings.CutPrefix(m.Subject, b.connPrefix)
	if !ok || len(m.Data) == 0 {
		return
	}
	ctx := context.Background() // the local calls never block
	var (
		reply []byte
		err   error
	)
	switch m.Data[0] {
	case opPost:
		err = b.local.PostToConnection(ctx, id, m.Data[1:])
	case opGet:
		var c *wsroute.Connection
		if c, err = b.local.GetConnection(ctx, id); err == nil {
			reply, err = json.Marshal(c)
		}
	case opDelete:
		err = b.local.DeleteConnection(ctx, id)
	case opJoin, opLeave:
		gm := b.groups()
		switch {
		case gm == nil:
			err = errors.New("the router has no groups")
		case m.Data[0] == opJoin:
			err = gm.Join(ctx, string(m.Data[1:]), id)
		default:
			err = gm.Leave(ctx, string(m.Data[1:]), id)
		}
	default:
		err = fmt.Errorf("unknown request %q", m.Data[0])
	}
	if err := m.Respond(encodeReply(reply, err)); err != nil {
		b.log.Warn("wsnats: cannot answer a request", "connectionId", id, "err", err)
	}
}

func encodeReply(body []byte, err error) []byte {
	var code byte
	switch {
	case err == nil:
		return append([]byte{replyOK}, body...)
	case errors.Is(err, wsroute.ErrGone):
		code = replyGone
	case errors.Is(err, wsroute.ErrLimitExceeded):
		code = replyLimit
	case errors.Is(err, wsroute.ErrPayloadTooLarge):
		code = replyTooLarge
	case errors.Is(err, wsroute.ErrRouterClosed):
		code = replyClosed
	case errors.Is(err, wsroute.ErrInvalidGroup):
		code = replyInvalid
	default:
		return append([]byte{replyError}, err.Error()...)
	}
	return []byte{code}
}
