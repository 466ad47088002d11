package raft

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
)

// Logger is what the core logs through. Panic and Panicf are used for broken
// invariants and corrupt storage: an implementation must panic from them
// (after logging), and Fatal/Fatalf must not return.
//
// A Logger may be called from any goroutine that drives a node; it must be
// safe for that.
type Logger interface {
	Debug(v ...any)
	Debugf(format string, v ...any)
	Info(v ...any)
	Infof(format string, v ...any)
	Warning(v ...any)
	Warningf(format string, v ...any)
	Error(v ...any)
	Errorf(format string, v ...any)
	Fatal(v ...any)
	Fatalf(format string, v ...any)
	Panic(v ...any)
	Panicf(format string, v ...any)
}

// packageLogger is the logger nodes use by default: one on log/slog's
// default logger.
var packageLogger Logger = NewSlogLogger(slog.Default())

var (
	defaultLoggerMu sync.Mutex
	defaultLogger   = packageLogger
)

// SetLogger replaces the Logger used by nodes whose Config.Logger is nil.
// Nodes created before the call keep the logger they had.
func SetLogger(l Logger) {
	defaultLoggerMu.Lock()
	defer defaultLoggerMu.Unlock()
	defaultLogger = l
}

// ResetDefaultLogger undoes SetLogger: nodes created afterwards with a nil
// Config.Logger log to log/slog's default logger again.
func ResetDefaultLogger() { SetLogger(packageLogger) }

// getLogger returns the logger set with SetLogger.
func getLogger() Logger {
	defaultLoggerMu.Lock()
	defer defaultLoggerMu.Unlock()
	return defaultLogger
}

// DiscardLogger drops everything but still panics from Panic/Panicf and
// exits from Fatal/Fatalf. Use it to silence the core, e.g. in benchmarks.
var DiscardLogger Logger = &slogLogger{l: slog.New(discardHandler{})}

// NewSlogLogger returns a Logger that writes to l. Warning maps to
// slog.LevelWarn; Fatal and Panic log at slog.LevelError before exiting or
// panicking.
func NewSlogLogger(l *slog.Logger) Logger { return &slogLogger{l: l} }

type slogLogger struct{ l *slog.Logger }

func (s *slogLogger) log(level slog.Level, msg string) {
	s.l.Log(context.Background(), level, msg)
}

func (s *slogLogger) Debug(v ...any) { s.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (s *slogLogger) Debugf(format string, v ...any) {
	s.log(slog.LevelDebug, fmt.Sprintf(format, v...))
}
func (s *slogLogger) Info(v ...any) { s.log(slog.LevelInfo, fmt.Sprint(v...)) }
func (s *slogLogger) Infof(format string, v ...any) {
	s.log(slog.LevelInfo, fmt.Sprintf(format, v...))
}
func (s *slogLogger) Warning(v ...any) { s.log(slog.LevelWarn, fmt.Sprint(v...)) }
func (s *slogLogger) Warningf(format string, v ...any) {
	s.log(slog.LevelWarn, fmt.Sprintf(format, v...))
}
func (s *slogLogger) Error(v ...any) { s.log(slog.LevelError, fmt.Sprint(v...)) }
func (s *slogLogger) Errorf(format string, v ...any) {
	s.log(slog.LevelError, fmt.Sprintf(format, v...))
}

func (s *slogLogger) Fatal(v ...any) {
	s.log(slog.LevelError, fmt.Sprint(v...))
	os.Exit(1)
}

func (s *slogLogger) Fatalf(format string, v ...any) {
	s.log(slog.LevelError, fmt.Sprintf(format, v...))
	os.Exit(1)
}

func (s *slogLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	s.log(slog.LevelError, msg)
	panic(msg)
}

func (s *slogLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	s.log(slog.LevelError, msg)
	panic(msg)
}

// discardHandler is an slog.Handler that is never enabled.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// DefaultLogger is a Logger that writes through a standard library
// *log.Logger, one line per call, each line labelled with its level.
// Debug output is dropped until EnableDebug is called. Build one around
// any *log.Logger, e.g.
//
//	&raft.DefaultLogger{Logger: log.New(os.Stderr, "raft ", 0)}
//
// and pass it as Config.Logger or to SetLogger. A DefaultLogger whose
// Logger is nil writes to log.Default(). Like *log.Logger it is safe for
// concurrent use, except that EnableDebug and EnableTimestamps must not
// race with logging.
type DefaultLogger struct {
	*log.Logger
	debug bool
}

// EnableTimestamps adds the date and time to every line.
func (l *DefaultLogger) EnableTimestamps() {
	out := l.out()
	out.SetFlags(out.Flags() | log.Ldate | log.Ltime)
}

// EnableDebug makes Debug and Debugf write their lines.
func (l *DefaultLogger) EnableDebug() { l.debug = true }

func (l *DefaultLogger) out() *log.Logger {
	if l.Logger == nil {
		return log.Default()
	}
	return l.Logger
}

// write logs msg with its level label; depth 3 attributes the line to the
// caller of the exported method when the logger prints file names.
func (l *DefaultLogger) write(level, msg string) {
	_ = l.out().Output(3, level+": "+msg)
}

// Debug logs at debug level, if enabled (see EnableDebug).
func (l *DefaultLogger) Debug(v ...any) {
	if l.debug {
		l.write("DEBUG", fmt.Sprint(v...))
	}
}

// Debugf logs at debug level, if enabled (see EnableDebug).
func (l *DefaultLogger) Debugf(format string, v ...any) {
	if l.debug {
		l.write("DEBUG", fmt.Sprintf(format, v...))
	}
}

// Info logs at info level.
func (l *DefaultLogger) Info(v ...any) { l.write("INFO", fmt.Sprint(v...)) }

// Infof logs at info level.
func (l *DefaultLogger) Infof(format string, v ...any) { l.write("INFO", fmt.Sprintf(format, v...)) }

// Warning logs at warning level.
func (l *DefaultLogger) Warning(v ...any) { l.write("WARN", fmt.Sprint(v...)) }

// Warningf logs at warning level.
func (l *DefaultLogger) Warningf(format string, v ...any) {
	l.write("WARN", fmt.Sprintf(format, v...))
}

// Error logs at error level.
func (l *DefaultLogger) Error(v ...any) { l.write("ERROR", fmt.Sprint(v...)) }

// Errorf logs at error level.
func (l *DefaultLogger) Errorf(format string, v ...any) {
	l.write("ERROR", fmt.Sprintf(format, v...))
}

// Fatal logs at fatal level and exits the process with status 1.
func (l *DefaultLogger) Fatal(v ...any) {
	l.write("FATAL", fmt.Sprint(v...))
	os.Exit(1)
}

// Fatalf logs at fatal level and exits the process with status 1.
func (l *DefaultLogger) Fatalf(format string, v ...any) {
	l.write("FATAL", fmt.Sprintf(format, v...))
	os.Exit(1)
}

// Panic logs at panic level, then panics with the message.
func (l *DefaultLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	l.write("PANIC", msg)
	panic(msg)
}

// Panicf logs at panic level, then panics with the message.
func (l *DefaultLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.write("PANIC", msg)
	panic(msg)
}
