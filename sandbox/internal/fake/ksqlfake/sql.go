package ksqlfake

import (
	"fmt"
	"strconv"
	"strings"
)

// token is one lexical element of a statement.
type token struct {
	kind   byte // 'i' identifier, 'n' number, or the punctuation character itself
	text   string
	quoted bool // a backquoted identifier
	pos    int
}

// lex splits a statement into tokens. Backquoted identifiers keep their
// case and undouble “; bare identifiers are returned as written.
func lex(stmt string) ([]token, error) {
	var out []token
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '`':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(stmt) {
					return nil, fmt.Errorf("line 1:%d: unterminated quoted identifier", i+1)
				}
				if stmt[j] == '`' {
					if j+1 < len(stmt) && stmt[j+1] == '`' {
						b.WriteByte('`')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(stmt[j])
				j++
			}
			out = append(out, token{kind: 'i', text: b.String(), quoted: true, pos: i})
			i = j + 1
		case isIdentStart(c):
			j := i
			for j < len(stmt) && (isIdentStart(stmt[j]) || isDigit(stmt[j])) {
				j++
			}
			out = append(out, token{kind: 'i', text: stmt[i:j], pos: i})
			i = j
		case isDigit(c) || (c == '-' && i+1 < len(stmt) && isDigit(stmt[i+1])):
			j := i + 1
			for j < len(stmt) && isDigit(stmt[j]) {
				j++
			}
			out = append(out, token{kind: 'n', text: stmt[i:j], pos: i})
			i = j
		case strings.IndexByte("(),;*=", c) >= 0:
			out = append(out, token{kind: c, text: string(c), pos: i})
			i++
		default:
			return nil, fmt.Errorf("line 1:%d: extraneous input '%c'", i+1, c)
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '@' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parser walks a token list.
type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: 0, text: "<EOF>"}
}

func (p *parser) keyword(kw string) bool {
	t := p.peek()
	if t.kind == 'i' && !t.quoted && strings.EqualFold(t.text, kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(kind byte) (token, error) {
	t := p.peek()
	if t.kind != kind {
		return t, p.syntax()
	}
	p.i++
	return t, nil
}

func (p *parser) syntax() error {
	t := p.peek()
	return fmt.Errorf("line 1:%d: Syntax error at or near '%s'", t.pos+1, t.text)
}

// end accepts an optional ';' and then the end of the statement.
func (p *parser) end() error {
	if p.peek().kind == ';' {
		p.i++
	}
	if p.i != len(p.toks) {
		return p.syntax()
	}
	return nil
}

// describeStmt is DESCRIBE <source> [EXTENDED];
type describeStmt struct {
	source   token
	extended bool
}

// pullStmt is SELECT * FROM <source> WHERE <column> IN (<int>, …); or
// WHERE <column> = <int>.
type pullStmt struct {
	source   token
	column   token
	keys     []int64
	scan     bool  // a table scan: no WHERE clause
	hasLimit bool  // the statement has a LIMIT clause
	limit    int64 // LIMIT of a scan; 0 means none
}

// showPropsStmt is SHOW PROPERTIES; (or LIST PROPERTIES;).
type showPropsStmt struct{}

// explainStmt is EXPLAIN <query id>;
type explainStmt struct{ query token }

// parse returns a *describeStmt, a *showPropsStmt, an *explainStmt or a
// *pullStmt; any other statement is an error.
func parse(stmt string) (any, error) {
	toks, err := lex(stmt)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	switch {
	case p.keyword("SHOW") || p.keyword("LIST"):
		if !p.keyword("PROPERTIES") {
			break
		}
		return &showPropsStmt{}, p.end()
	case p.keyword("EXPLAIN"):
		e := &explainStmt{}
		if e.query, err = p.expect('i'); err != nil {
			return nil, err
		}
		return e, p.end()
	case p.keyword("DESCRIBE"):
		d := &describeStmt{}
		if d.source, err = p.expect('i'); err != nil {
			return nil, err
		}
		d.extended = p.keyword("EXTENDED")
		return d, p.end()
	case p.keyword("SELECT"):
		q := &pullStmt{}
		if _, err := p.expect('*'); err != nil {
			return nil, err
		}
		if !p.keyword("FROM") {
			return nil, p.syntax()
		}
		if q.source, err = p.expect('i'); err != nil {
			return nil, err
		}
		if !p.keyword("WHERE") {
			// A table scan: SELECT * FROM <table> [LIMIT n];
			q.scan = true
			if p.keyword("LIMIT") {
				q.hasLimit = true
				if q.limit, err = p.number(); err != nil {
					return nil, err
				}
			}
			return q, p.end()
		}
		if q.column, err = p.expect('i'); err != nil {
			return nil, err
		}
		switch {
		case p.keyword("IN"):
			if _, err := p.expect('('); err != nil {
				return nil, err
			}
			for {
				n, err := p.number()
				if err != nil {
					return nil, err
				}
				q.keys = append(q.keys, n)
				if p.peek().kind == ',' {
					p.i++
					continue
				}
				if _, err := p.expect(')'); err != nil {
					return nil, err
				}
				break
			}
		case p.peek().kind == '=':
			p.i++
			n, err := p.number()
			if err != nil {
				return nil, err
			}
			q.keys = []int64{n}
		default:
			return nil, p.syntax()
		}
		if p.keyword("LIMIT") {
			q.hasLimit = true
			if q.limit, err = p.number(); err != nil {
				return nil, err
			}
		}
		return q, p.end()
	}
	return nil, fmt.Errorf("this double answers only DESCRIBE and pull queries, not: %s", strings.TrimSpace(stmt))
}

func (p *parser) number() (int64, error) {
	t, err := p.expect('n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("line 1:%d: %s is out of the BIGINT range", t.pos+1, t.text)
	}
	return n, nil
}
