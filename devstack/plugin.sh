#!/bin/bash
# shellcheck shell=bash
# DevStack plugin entry point for Ferry. DevStack sources this file at each phase:
#   stack pre-install | install | post-config | extra | test-config, unstack, clean
# Enable it in local.conf with:  enable_plugin ferry <git URL of Ferry> [branch]

FERRY_PLUGIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=devstack/lib/ferry
source "$FERRY_PLUGIN_DIR/lib/ferry"
# shellcheck source=devstack/lib/ferry-dashboard-tempest
source "$FERRY_PLUGIN_DIR/lib/ferry-dashboard-tempest"

if is_service_enabled ferry-api ferry-conductor ferry-compute; then
    case "${1:-}/${2:-}" in
        stack/install)
            echo_summary "Installing Ferry"
            install_ferry
            if [[ "$FERRY_INSTALL_DASHBOARD" == "True" ]] && is_service_enabled horizon; then
                echo_summary "Installing Ferry's dashboard"
                install_ferry_dashboard
            fi
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
        stack/test-config)
            if is_service_enabled tempest; then
                echo_summary "Configuring tempest for Ferry"
                configure_ferry_tempest
            fi
            ;;
        unstack/*)
            stop_ferry
            ;;
        clean/*)
            cleanup_ferry
            ;;
    esac
fi
