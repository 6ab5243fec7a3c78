package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// errList collects user errors during one load.
type errList struct {
	errs Errors
	// skip holds paths already reported (bad names) whose CUE errors would only repeat them.
	skip map[string]bool
}

// nameBound is how CUE shows the #Name constraint in its messages.
var nameBound = "out of bound =~" + strconv.Quote(nameRE.String())

// nearest is the recorded place of field, or of its closest recorded ancestor, or of the value itself.
func nearest(pos map[string]Pos, field string) Pos {
	for f := field; ; {
		if p, ok := pos[f]; ok {
			return p
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			return pos[""]
		}
		f = f[:i]
	}
}

func (l *errList) add(pos Pos, path, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: pos, Path: path, Message: fmt.Sprintf(format, args...)})
}

// result sorts and deduplicates the errors; nil when there are none.
func (l *errList) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortFunc(l.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	l.errs = slices.CompactFunc(l.errs, func(a, b *Error) bool { return *a == *b })
	return l.errs
}

// cueOpts says how to turn the errors of one CUE evaluation into user errors.
type cueOpts struct {
	// prefix replaces the first path element (the schema definition the value was unified with) when stripDef is
	// set, or is prepended otherwise.
	prefix   []string
	stripDef bool
	// at is where an error without a position in the user's files is reported (e.g. a missing required field).
	at Pos
	// pos, when set, maps paths relative to the value (as in Workload.Pos) to places; an error without a user
	// position is reported at its nearest recorded ancestor.
	pos map[string]Pos
	// prefer picks, among several user positions, the one to report first (e.g. the environment override).
	prefer func(Pos) bool
}

// addCUE converts a CUE error (list) into user errors. Alternatives of a failed disjunction are merged into one.
func (l *errList) addCUE(err error, o cueOpts) {
	type entry struct {
		path      string
		positions []Pos
		msgs      []string
		disj      bool
		at        Pos
	}
	var order []string
	byPath := map[string]*entry{}
	for _, e := range errors.Errors(err) {
		p := e.Path()
		if o.stripDef && len(p) > 0 && strings.HasPrefix(p[0], "#") {
			p = p[1:]
		}
		path := joinPath(append(slices.Clip(o.prefix), p...))
		if l.skip[path] {
			continue
		}
		en := byPath[path]
		if en == nil {
			en = &entry{path: path, at: o.at}
			if o.pos != nil {
				en.at = nearest(o.pos, joinPath(p))
			}
			byPath[path] = en
			order = append(order, path)
		}
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		switch {
		case strings.Contains(format, "errors in empty disjunction"):
			en.disj = true
			continue
		case strings.HasPrefix(format, "field is required but not present") && len(p) > 0:
			msg = fmt.Sprintf("required field %s is missing", p[len(p)-1])
		case strings.Contains(msg, nameBound):
			msg = strings.Replace(msg, " ("+nameBound+")", ": use "+nameRule, 1)
		case errors.Unwrap(e) != nil:
			msg += ": " + errors.Unwrap(e).Error()
		}
		if !slices.Contains(en.msgs, msg) {
			en.msgs = append(en.msgs, msg)
		}
		for _, tp := range errors.Positions(e) {
			if up, ok := userPos(tp); ok && !slices.Contains(en.positions, up) {
				en.positions = append(en.positions, up)
			}
		}
	}
	for _, path := range order {
		en := byPath[path]
		if len(en.msgs) == 0 {
			continue
		}
		msg := strings.Join(en.msgs, "; ")
		if en.disj && len(en.msgs) > 1 {
			msg = "no alternative matches: " + strings.Join(en.msgs, "; or ")
		}
		pos := en.at
		if len(en.positions) > 0 {
			slices.SortStableFunc(en.positions, comparePos)
			if o.prefer != nil {
				slices.SortStableFunc(en.positions, func(a, b Pos) int {
					return cmp.Compare(boolInt(!o.prefer(a)), boolInt(!o.prefer(b)))
				})
			}
			pos = en.positions[0]
			if len(en.positions) > 1 {
				others := make([]string, 0, len(en.positions)-1)
				for _, p := range en.positions[1:] {
					others = append(others, p.String())
				}
				msg += " (other value at " + strings.Join(others, ", ") + ")"
			}
		}
		l.errs = append(l.errs, &Error{Pos: pos, Path: en.path, Message: msg})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func comparePos(a, b Pos) int {
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
}

// userPos converts a CUE position, reporting false for positions outside the user's files (the schema, builtins).
func userPos(p token.Pos) (Pos, bool) {
	if !p.IsValid() || p.Filename() == "" || strings.HasPrefix(p.Filename(), ImportPath+"/") {
		return Pos{}, false
	}
	return Pos{File: p.Filename(), Line: p.Line(), Column: p.Column()}, true
}

// joinPath writes a CUE path with list indices in brackets: workloads.web.ports[0].port.
func joinPath(elems []string) string {
	var b strings.Builder
	for _, e := range elems {
		if e != "" && strings.Trim(e, "0123456789") == "" {
			b.WriteString("[" + e + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e)
	}
	return b.String()
}
