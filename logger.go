package raft

import (
	"context"
	"fmt"
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

var (
	defaultLoggerMu sync.Mutex
	defaultLogger   Logger = NewSlogLogger(slog.Default())
)

// SetLogger replaces the Logger used by nodes whose Config.Logger is nil.
// Nodes created before the call keep the logger they had.
func SetLogger(l Logger) {
	defaultLoggerMu.Lock()
	defer defaultLoggerMu.Unlock()
	defaultLogger = l
}

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
