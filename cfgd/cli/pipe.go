package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// pipeline is what follows the first '|' of a command: Junos output
// modifiers, applied in order to the rendered lines.
type pipeline struct {
	display string // "", "json", "xml" or "set"
	// compare is "| compare [rollback N]" of configuration mode, passed
	// to cfgd as words.
	compare []string
	filters []func([]string) []string
}

// splitPipes separates a command line into its words and its pipeline.
func splitPipes(line string) ([]string, *pipeline, error) {
	parts := splitUnquoted(line, '|')
	words := fields(parts[0])
	p := &pipeline{}
	for _, part := range parts[1:] {
		f := fields(part)
		if len(f) == 0 {
			return nil, nil, fmt.Errorf("syntax error, expecting <command> after '|'")
		}
		switch f[0] {
		case "display":
			if len(f) != 2 || (f[1] != "json" && f[1] != "set" && f[1] != "xml") {
				return nil, nil, fmt.Errorf("syntax error, expecting 'json', 'set' or 'xml' after 'display'")
			}
			p.display = f[1]
		case "match", "except", "find":
			if len(f) < 2 {
				return nil, nil, fmt.Errorf("syntax error, expecting <pattern> after '%s'", f[0])
			}
			re, err := regexp.Compile(strings.Join(f[1:], " "))
			if err != nil {
				return nil, nil, fmt.Errorf("invalid %s pattern: %v", f[0], err)
			}
			switch f[0] {
			case "match":
				p.filters = append(p.filters, func(in []string) []string { return keep(in, re, true) })
			case "except":
				p.filters = append(p.filters, func(in []string) []string { return keep(in, re, false) })
			default:
				p.filters = append(p.filters, func(in []string) []string {
					for i, l := range in {
						if re.MatchString(l) {
							return in[i:]
						}
					}
					return nil
				})
			}
		case "count":
			p.filters = append(p.filters, func(in []string) []string {
				return []string{fmt.Sprintf("Count: %d lines", len(in))}
			})
		case "last":
			n := 10
			if len(f) > 1 {
				v, err := strconv.Atoi(f[1])
				if err != nil || v < 1 {
					return nil, nil, fmt.Errorf("invalid number of lines: %s", f[1])
				}
				n = v
			}
			p.filters = append(p.filters, func(in []string) []string {
				if len(in) > n {
					return in[len(in)-n:]
				}
				return in
			})
		case "compare":
			if len(f) != 1 && (len(f) != 3 || f[1] != "rollback") {
				return nil, nil, fmt.Errorf("syntax error, expecting 'rollback <number>' after 'compare'")
			}
			p.compare = f
		case "no-more":
		default:
			return nil, nil, fmt.Errorf("syntax error, expecting one of compare, count, display, except, find, last, match, no-more: %s", f[0])
		}
	}
	return words, p, nil
}

func keep(in []string, re *regexp.Regexp, want bool) []string {
	var out []string
	for _, l := range in {
		if re.MatchString(l) == want {
			out = append(out, l)
		}
	}
	return out
}

func (p *pipeline) apply(lines []string) []string {
	for _, f := range p.filters {
		lines = f(lines)
	}
	return lines
}

// fields splits on blanks, keeping double-quoted strings together.
func fields(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case (r == ' ' || r == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// splitUnquoted splits s at sep outside double quotes.
func splitUnquoted(s string, sep rune) []string {
	var parts []string
	start, inQuote := 0, false
	for i, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == sep && !inQuote:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
