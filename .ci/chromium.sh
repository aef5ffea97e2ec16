# Source this: installs headless Chromium and its driver from Debian's packages when they are missing,
# for the browser tests (tests/test_browser.py), and exports MONITOR_CHROMIUM / MONITOR_CHROMEDRIVER.

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing Chromium from Debian's packages" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
export MONITOR_CHROMIUM=/usr/bin/chromium MONITOR_CHROMEDRIVER=/usr/bin/chromedriver
echo "$(/usr/bin/chromium --version 2>/dev/null) for the browser tests" >&2
