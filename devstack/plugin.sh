#!/bin/bash
# shellcheck shell=bash
# DevStack plugin entry point for Ferry. DevStack sources this file at each phase:
#   stack pre-install | install | post-config | extra | test-config, unstack, clean
# Enable it in local.conf with:  enable_plugin ferry <git URL of Ferry> [branch]

FERRY_PLUGIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=devstack/lib/ferry
source "$FERRY_PLUGIN_DIR/lib/ferry"

if is_service_enabled ferry-api ferry-conductor ferry-compute; then
    case "${1:-}/${2:-}" in
        stack/install)
            echo_summary "Installing Ferry"
            install_ferry
            ;;
        stack/post-config)
            echo_summary "Configuring Ferry"
            configure_ferry
            if is_service_enabled ferry-api && is_service_enabled key; then
                create_ferry_accounts
            fi
            ;;
        stack/extra)
            echo_summary "Starting Ferry"
            start_ferry
            ;;
        unstack/*)
            stop_ferry
            ;;
        clean/*)
            cleanup_ferry
            ;;
    esac
fi
