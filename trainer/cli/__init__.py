"""Trainer commands for the `personabot` CLI; each module registers one command or group."""
