package conf

import (
	"fmt"
	"strings"
)

// Pos is where a token or statement came from.
type Pos struct {
	File string
	Line int // 1-based; 0 means unknown
	Col  int // 1-based
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

// lex splits text into tokens. It never fails: an unterminated string or
// comment runs to the end of input and is reported by the parser.
func lex(file, text string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	lastLine := 0 // line of the last non-comment token
	i := 0
	adv := func(n int) {
		for k := 0; k < n && i < len(text); k++ {
			if text[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	for i < len(text) {
		c := text[i]
		pos := Pos{File: file, Line: line, Col: col}
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			adv(1)
		case c == '#':
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				j = len(text) - i
			}
			toks = append(toks, token{kind: tComment, text: strings.TrimRight(text[i:i+j], "\r"), pos: pos, trailing: lastLine == line})
			adv(j)
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			j := strings.Index(text[i+2:], "*/")
			if j < 0 {
				return append(toks, token{kind: tEOF, pos: pos}), &Error{Pos: pos, Msg: "unterminated comment", Syntax: true}
			}
			toks = append(toks, token{kind: tComment, text: text[i : i+2+j+2], pos: pos, trailing: lastLine == line})
			adv(j + 4)
		case c == '{' || c == '}' || c == ';' || c == '[' || c == ']':
			k := map[byte]tokKind{'{': tLBrace, '}': tRBrace, ';': tSemi, '[': tLBrack, ']': tRBrack}[c]
			toks = append(toks, token{kind: k, text: string(c), pos: pos})
			lastLine = line
			adv(1)
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
				return append(toks, token{kind: tEOF, pos: pos}), &Error{Pos: pos, Msg: "unterminated quoted string", Syntax: true}
			}
			toks = append(toks, token{kind: tWord, text: b.String(), pos: pos, quoted: true})
			lastLine = line
			adv(j + 1 - i)
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\r\n{};[]\"", rune(text[j])) {
				if text[j] == '#' && j > i {
					break
				}
				j++
			}
			toks = append(toks, token{kind: tWord, text: text[i:j], pos: pos})
			lastLine = line
			adv(j - i)
		}
	}
	toks = append(toks, token{kind: tEOF, pos: Pos{File: file, Line: line, Col: col}})
	return toks, nil
}

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
