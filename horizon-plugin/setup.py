# Ferry's Horizon plugin. All metadata is in setup.cfg (setuptools only: it must install from
# Debian's python3-setuptools with no package index reachable).
import setuptools

setuptools.setup()
