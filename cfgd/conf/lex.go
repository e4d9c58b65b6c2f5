package conf

import (
	"fmt"
	"strings"
)

// Pos is where a token or statement came from.
type Pos struct {
	File string
	// 32 bits: every statement of the tree carries a Pos (a Node of 144
	// bytes rather than 160), and a text is at most 16 MiB.
	Line int32 // 1-based; 0 means unknown
	Col  int32 // 1-based
}

func (p Pos) String() string {
	if p.File != "" {
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	return fmt.Sprintf("%d:%d", p.Line, p.Col)
}

type tokKind uint8

const (
	tWord    tokKind = iota
	tLBrace          // {
	tRBrace          // }
	tSemi            // ;
	tLBrack          // [
	tRBrack          // ]
	tComment         // # ... or /* ... */
	tEOF
)

// token is one lexeme; every token carries its position, as in
// nats-server's configuration lexer.
type token struct {
	kind   tokKind
	text   string
	pos    Pos
	quoted bool // a "..." string: never a keyword or bracket
	// trailing is true for a comment after other tokens on its line
	// ("## SECRET-DATA"), which is not attached to the next statement.
	trailing bool
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tWord:
		return "'" + t.text + "'"
	}
	return "'" + t.text + "'"
}

// lexer splits text into tokens, one at a time: a 10 MB configuration is
// parsed without holding its millions of tokens at once. It never fails:
// an unterminated string or comment ends the input (tEOF), and err says
// why, for the parser to report.
type lexer struct {
	file, text string
	i          int
	line, col  int
	lastLine   int // line of the last non-comment token
	err        *Error
}

func newLexer(file, text string) *lexer {
	return &lexer{file: file, text: text, line: 1, col: 1}
}

func (l *lexer) adv(n int) {
	for k := 0; k < n && l.i < len(l.text); k++ {
		if l.text[l.i] == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
		l.i++
	}
}

// next returns the next token; at the end (or after an error) tEOF, again
// and again.
func (l *lexer) next() token {
	text := l.text
	for l.i < len(text) && l.err == nil {
		i, c := l.i, text[l.i]
		pos := Pos{File: l.file, Line: int32(l.line), Col: int32(l.col)}
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.adv(1)
		case c == '#':
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				j = len(text) - i
			}
			t := token{kind: tComment, text: strings.TrimRight(text[i:i+j], "\r"), pos: pos, trailing: l.lastLine == l.line}
			l.adv(j)
			return t
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			j := strings.Index(text[i+2:], "*/")
			if j < 0 {
				l.err = &Error{Pos: pos, Msg: "unterminated comment", Syntax: true}
				return token{kind: tEOF, pos: pos}
			}
			t := token{kind: tComment, text: text[i : i+2+j+2], pos: pos, trailing: l.lastLine == l.line}
			l.adv(j + 4)
			return t
		case c == '{' || c == '}' || c == ';' || c == '[' || c == ']':
			l.lastLine = l.line
			l.adv(1)
			return token{kind: punct[c], text: text[i : i+1], pos: pos}
		case c == '"':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(text) {
				if text[j] == '\\' && j+1 < len(text) {
					b.WriteByte(text[j+1])
					j += 2
					continue
				}
				if text[j] == '"' {
					closed = true
					break
				}
				b.WriteByte(text[j])
				j++
			}
			if !closed {
				l.err = &Error{Pos: pos, Msg: "unterminated quoted string", Syntax: true}
				return token{kind: tEOF, pos: pos}
			}
			l.lastLine = l.line
			l.adv(j + 1 - i)
			return token{kind: tWord, text: b.String(), pos: pos, quoted: true}
		default:
			j := i
			for j < len(text) && !wordEnd[text[j]] {
				if text[j] == '#' && j > i {
					break
				}
				j++
			}
			l.lastLine = l.line
			l.adv(j - i)
			return token{kind: tWord, text: text[i:j], pos: pos}
		}
	}
	if l.err != nil {
		return token{kind: tEOF, pos: l.err.Pos}
	}
	return token{kind: tEOF, pos: Pos{File: l.file, Line: int32(l.line), Col: int32(l.col)}}
}

// punct is the kind of each punctuation byte.
var punct = [256]tokKind{'{': tLBrace, '}': tRBrace, ';': tSemi, '[': tLBrack, ']': tRBrack}

// wordEnd marks the bytes that end an unquoted word.
var wordEnd = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n{};[]\"") {
		t[c] = true
	}
	return t
}()

// quote renders a value so that lex reads it back as one word.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\r\n{};[]\"#\\'") && !strings.HasPrefix(v, "/*") && v != "inactive:" && v != "replace:" {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}
