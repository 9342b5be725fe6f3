package app

import (
	"context"
	"flag"
)

type nopService struct{}

func (nopService) RegisterFlags(*flag.FlagSet)       {}
func (nopService) Validate() error                   { return nil }
func (nopService) Start(context.Context, *App) error { return nil }
