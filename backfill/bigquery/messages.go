package bigquery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// messages is an ipc.MessageReader over the responses of one ReadRows
// call, as Arrow Flight feeds the IPC reader its messages: first the read
// session's schema, then each response's record batch. BigQuery sends a
// bare record-batch message per response, which becomes an ipc.Message
// without a copy; the goccy emulator sends a whole IPC stream per
// response, whose batches are read in turn and whose schema and
// end-of-stream marker are skipped.
//
// It also keeps each response's row_count, so that the stream reader can
// check that the batches hold exactly the rows announced.
type messages struct {
	dec  *decoder
	recv func() (*storagepb.ReadRowsResponse, error)

	sentSchema bool
	inner      ipc.MessageReader // the current framed response's messages
	// pending counts the rows announced by the responses read so far and
	// not yet seen in a record batch.
	pending int64
	refs    atomic.Int64
}

func newMessages(dec *decoder, recv func() (*storagepb.ReadRowsResponse, error)) *messages {
	m := &messages{dec: dec, recv: recv}
	m.refs.Store(1)
	return m
}

// Message implements ipc.MessageReader. It returns io.EOF at the end of
// the stream and the gRPC error of a broken one.
func (m *messages) Message() (*ipc.Message, error) {
	if !m.sentSchema {
		m.sentSchema = true
		return ipc.NewMessage(memory.NewBufferBytes(m.dec.schemaMeta), memory.NewBufferBytes(nil)), nil
	}
	for {
		if m.inner != nil {
			msg, err := m.inner.Message()
			switch {
			case errors.Is(err, io.EOF):
				m.inner.Release()
				m.inner = nil
				continue
			case err != nil:
				return nil, fmt.Errorf("decoding a response's Arrow IPC stream: %w", err)
			case msg.Type() == ipc.MessageSchema:
				continue // the emulator repeats the schema in every response
			}
			return msg, nil // valid until the next call, as the IPC reader expects
		}
		resp, err := m.recv()
		if err != nil {
			return nil, err
		}
		if m.pending != 0 {
			return nil, fmt.Errorf("a response announced %d rows more than its record batches held", m.pending)
		}
		m.pending = resp.GetRowCount()
		payload := resp.GetArrowRecordBatch().GetSerializedRecordBatch()
		if len(payload) == 0 {
			if m.pending != 0 {
				return nil, fmt.Errorf("a response announced %d rows and carries no record batch", m.pending)
			}
			continue // progress or throttling news only
		}
		if !m.dec.known {
			meta, _, err := splitMessage(payload)
			if err != nil {
				return nil, err
			}
			m.dec.framed = ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(nil)).Type() == ipc.MessageSchema
			m.dec.known = true
		}
		if m.dec.framed {
			m.inner = ipc.NewMessageReader(bytes.NewReader(payload))
			continue
		}
		return bareMessage(payload)
	}
}

// Retain implements ipc.MessageReader.
func (m *messages) Retain() { m.refs.Add(1) }

// Release implements ipc.MessageReader.
func (m *messages) Release() {
	if m.refs.Add(-1) == 0 && m.inner != nil {
		m.inner.Release()
		m.inner = nil
	}
}

// bareMessage wraps a payload holding one encapsulated IPC message as an
// ipc.Message over the payload's own bytes.
func bareMessage(payload []byte) (*ipc.Message, error) {
	meta, body, err := splitMessage(payload)
	if err != nil {
		return nil, err
	}
	msg := ipc.NewMessage(memory.NewBufferBytes(meta), memory.NewBufferBytes(body))
	if n := msg.BodyLen(); n < 0 || n > int64(len(body)) {
		msg.Release()
		return nil, fmt.Errorf("an Arrow IPC message announces a %d-byte body in %d bytes", n, len(body))
	}
	return msg, nil
}

// splitMessage splits an encapsulated IPC message into its metadata
// (flatbuffer) and its body: an optional continuation token 0xFFFFFFFF,
// the metadata's length (little-endian int32), the metadata, the body.
func splitMessage(b []byte) (meta, body []byte, err error) {
	off := 0
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == 0xFFFFFFFF {
		off = 4
	}
	if len(b) < off+4 {
		return nil, nil, fmt.Errorf("an Arrow IPC message of %d bytes has no metadata length", len(b))
	}
	n := int(int32(binary.LittleEndian.Uint32(b[off:])))
	off += 4
	if n <= 0 || off+n > len(b) {
		return nil, nil, fmt.Errorf("an Arrow IPC message announces %d metadata bytes in %d", n, len(b))
	}
	return b[off : off+n], b[off+n:], nil
}
