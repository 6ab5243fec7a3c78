package nomademu

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// filter is a parsed ?filter= expression: the subset of go-bexpr, the expression language of Nomad's list
// endpoints (api-docs "Filtering"), that a client needs: or, and, not and parentheses over matches of a selector
// (Field, Field.Sub, Meta["key"]) with ==, !=, is empty, is not empty, in, not in, contains, not contains, matches
// and not matches; values are double-quoted or backquoted strings, numbers or true / false. A selector that finds
// nothing (a missing map key, an unknown field) matches as go-bexpr does: false, except for the negated operators
// and is empty.
type filter interface {
	eval(datum any) bool
}

type orFilter struct{ l, r filter }
type andFilter struct{ l, r filter }
type notFilter struct{ f filter }

type matchFilter struct {
	sel   []string
	op    string // "==", "!=", "empty", "not empty", "in", "not in", "matches", "not matches"
	value any    // string, float64 or bool
	re    *regexp.Regexp
}

func (f orFilter) eval(d any) bool  { return f.l.eval(d) || f.r.eval(d) }
func (f andFilter) eval(d any) bool { return f.l.eval(d) && f.r.eval(d) }
func (f notFilter) eval(d any) bool { return !f.f.eval(d) }

func (f matchFilter) eval(d any) bool {
	v, found := lookup(d, f.sel)
	negated := strings.HasPrefix(f.op, "not ") || f.op == "!="
	if !found {
		return negated || f.op == "empty"
	}
	var ok bool
	switch f.op {
	case "==", "!=":
		ok = equalValue(v, f.value)
	case "empty", "not empty":
		ok = isEmpty(v)
	case "in", "not in": // value in selector: an element, a key, or a substring
		switch c := v.(type) {
		case []any:
			for _, e := range c {
				ok = ok || equalValue(e, f.value)
			}
		case map[string]any:
			s, isString := f.value.(string)
			_, ok = c[s]
			ok = ok && isString
		case string:
			s, isString := f.value.(string)
			ok = isString && strings.Contains(c, s)
		}
	case "matches", "not matches":
		s, isString := v.(string)
		ok = isString && f.re.MatchString(s)
	}
	if negated {
		return !ok
	}
	return ok
}

func lookup(d any, sel []string) (any, bool) {
	for _, k := range sel {
		m, ok := d.(map[string]any)
		if !ok {
			return nil, false
		}
		if d, ok = m[k]; !ok {
			return nil, false
		}
	}
	return d, true
}

func equalValue(v, want any) bool {
	switch w := want.(type) {
	case string:
		switch x := v.(type) {
		case string:
			return x == w
		case float64:
			f, err := strconv.ParseFloat(w, 64)
			return err == nil && f == x
		case bool:
			b, err := strconv.ParseBool(w)
			return err == nil && b == x
		}
	case float64:
		x, ok := v.(float64)
		return ok && x == w
	case bool:
		x, ok := v.(bool)
		return ok && x == w
	}
	return false
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// datum is v in the generic form filters read (the JSON the API answers, field names as the api package's).
func datum(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

// parseFilter reads a filter expression; the error reads as Nomad's answer to a bad one (HTTP 400).
func parseFilter(s string) (filter, error) {
	p := &filterParser{src: s}
	f, err := p.or()
	if err == nil {
		p.space()
		if p.pos < len(p.src) {
			err = p.errorf("unexpected %q", p.src[p.pos:])
		}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read filter expression: %w", err)
	}
	return f, nil
}

type filterParser struct {
	src string
	pos int
}

func (p *filterParser) errorf(format string, a ...any) error {
	return fmt.Errorf("1:%d (%d): %s", p.pos+1, p.pos, fmt.Sprintf(format, a...))
}

func (p *filterParser) space() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
}

// keyword consumes word (followed by a non-identifier character) if it comes next.
func (p *filterParser) keyword(words ...string) bool {
	p.space()
	save := p.pos
	for _, w := range words {
		p.space()
		if !strings.HasPrefix(p.src[p.pos:], w) {
			p.pos = save
			return false
		}
		end := p.pos + len(w)
		if end < len(p.src) && isIdent(rune(p.src[end])) && isIdent(rune(w[len(w)-1])) {
			p.pos = save
			return false
		}
		p.pos = end
	}
	return true
}

func isIdent(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func (p *filterParser) or() (filter, error) {
	l, err := p.and()
	for err == nil && p.keyword("or") {
		var r filter
		if r, err = p.and(); err == nil {
			l = orFilter{l, r}
		}
	}
	return l, err
}

func (p *filterParser) and() (filter, error) {
	l, err := p.unary()
	for err == nil && p.keyword("and") {
		var r filter
		if r, err = p.unary(); err == nil {
			l = andFilter{l, r}
		}
	}
	return l, err
}

func (p *filterParser) unary() (filter, error) {
	if p.keyword("not") {
		f, err := p.unary()
		return notFilter{f}, err
	}
	if p.keyword("(") {
		f, err := p.or()
		if err == nil && !p.keyword(")") {
			err = p.errorf("expected )")
		}
		return f, err
	}
	return p.match()
}

func (p *filterParser) match() (filter, error) {
	p.space()
	if p.pos < len(p.src) && (p.src[p.pos] == '"' || p.src[p.pos] == '`' || p.src[p.pos] == '-' ||
		p.src[p.pos] >= '0' && p.src[p.pos] <= '9') {
		// value in selector
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		op := ""
		switch {
		case p.keyword("not", "in"):
			op = "not in"
		case p.keyword("in"):
			op = "in"
		default:
			return nil, p.errorf("expected in or not in")
		}
		sel, err := p.selector()
		return matchFilter{sel: sel, op: op, value: v}, err
	}
	sel, err := p.selector()
	if err != nil {
		return nil, err
	}
	m := matchFilter{sel: sel}
	switch {
	case p.keyword("=="):
		m.op = "=="
	case p.keyword("!="):
		m.op = "!="
	case p.keyword("is", "not", "empty"):
		m.op = "not empty"
		return m, nil
	case p.keyword("is", "empty"):
		m.op = "empty"
		return m, nil
	case p.keyword("not", "contains"):
		m.op = "not in"
	case p.keyword("contains"):
		m.op = "in"
	case p.keyword("not", "matches"):
		m.op = "not matches"
	case p.keyword("matches"):
		m.op = "matches"
	default:
		return nil, p.errorf("expected an operator (==, !=, is empty, is not empty, contains, matches)")
	}
	if m.value, err = p.value(); err != nil {
		return nil, err
	}
	if strings.HasSuffix(m.op, "matches") {
		s, ok := m.value.(string)
		if !ok {
			return nil, p.errorf("matches needs a string")
		}
		if m.re, err = regexp.Compile(s); err != nil {
			return nil, p.errorf("invalid regular expression: %v", err)
		}
	}
	return m, nil
}

func (p *filterParser) selector() ([]string, error) {
	p.space()
	var sel []string
	ident := func() error {
		start := p.pos
		for p.pos < len(p.src) && isIdent(rune(p.src[p.pos])) {
			p.pos++
		}
		if start == p.pos {
			return p.errorf("expected a selector")
		}
		sel = append(sel, p.src[start:p.pos])
		return nil
	}
	if err := ident(); err != nil {
		return nil, err
	}
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '.':
			p.pos++
			if err := ident(); err != nil {
				return nil, err
			}
			continue
		case '[':
			p.pos++
			p.space()
			if p.pos >= len(p.src) || p.src[p.pos] != '"' && p.src[p.pos] != '`' {
				return nil, p.errorf("expected a quoted key in [ ]")
			}
			v, err := p.value()
			s, ok := v.(string)
			if err != nil || !ok {
				return nil, p.errorf("expected a quoted key in [ ]")
			}
			if !p.keyword("]") {
				return nil, p.errorf("expected ]")
			}
			sel = append(sel, s)
			continue
		}
		break
	}
	return sel, nil
}

func (p *filterParser) value() (any, error) {
	p.space()
	if p.pos >= len(p.src) {
		return nil, p.errorf("expected a value")
	}
	switch c := p.src[p.pos]; {
	case c == '`':
		end := strings.IndexByte(p.src[p.pos+1:], '`')
		if end < 0 {
			return nil, p.errorf("unterminated raw string")
		}
		s := p.src[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		return s, nil
	case c == '"':
		for i := p.pos + 1; i < len(p.src); i++ {
			switch p.src[i] {
			case '\\':
				i++
			case '"':
				s, err := strconv.Unquote(p.src[p.pos : i+1])
				if err != nil {
					return nil, p.errorf("invalid string: %v", err)
				}
				p.pos = i + 1
				return s, nil
			}
		}
		return nil, p.errorf("unterminated string")
	}
	start := p.pos
	for p.pos < len(p.src) && (isIdent(rune(p.src[p.pos])) || p.src[p.pos] == '.' || p.src[p.pos] == '-') {
		p.pos++
	}
	word := p.src[start:p.pos]
	switch word {
	case "":
		return nil, p.errorf("expected a value")
	case "true", "false":
		return word == "true", nil
	}
	if f, err := strconv.ParseFloat(word, 64); err == nil {
		return f, nil
	}
	return word, nil // a bare word, as go-bexpr reads one
}
