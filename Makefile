# Quick start: `make demo` renders a video offline; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FONTS  := $(VENV)/.fonts-installed
NPM    := $(VENV)/fonts-npm

.PHONY: install browser ocr demo test soak bench clean

install: $(STAMP) $(FONTS)

# Exact versions come from constraints.txt; nothing is installed outside .venv.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
	touch $@

# Caption fonts from the pinned npm packages (config/fonts); tasks/fonts.py picks the files
# and copies them into .venv/share/reelflow/fonts (the keyframe typefaces into ../typefaces),
# then the npm tree is removed.
$(FONTS): $(STAMP) config/fonts/package.json config/fonts/package-lock.json tasks/fonts.py
	rm -rf $(NPM) && mkdir -p $(NPM)
	cp config/fonts/package.json config/fonts/package-lock.json $(NPM)/
	npm ci --prefix $(NPM) --ignore-scripts --no-audit --no-fund --loglevel=error
	$(BIN)/python -m tasks.fonts $(NPM)/node_modules
	rm -rf $(NPM)
	touch $@

# The demo narrates a short script written for it (deployments/scripts): real sentences, each
# scene's bold words on screen.
demo: install
	$(BIN)/reelflow make --script deployments/scripts/honeybee-dance.md

# The browser test drives Debian's Chromium (Playwright's own download cannot work here);
# without root or apt it is skipped, and says why.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will be skipped"

# The keyframe tests read the offline cards' text with Debian's tesseract (English, Greek,
# Russian and Simplified Chinese data); without root or apt they are skipped, and say why.
ocr:
	@tesseract --list-langs 2>/dev/null | grep -qx chi_sim || (apt-get update -qq && apt-get install -y -qq \
		tesseract-ocr tesseract-ocr-ell tesseract-ocr-rus tesseract-ocr-chi-sim >/dev/null) \
		|| echo "tesseract could not be installed: the keyframe OCR tests will be skipped"

test: install browser ocr
	$(BIN)/pytest

# The long randomized kill-point runs that `make test` samples with fixed seeds.
soak: install browser ocr
	$(BIN)/pytest -m slow

# Speed (BENCHMARKS.md), then the cloud soak: 20 cloud renders against the fakes with faults
# and kill -9 at random points, about 6 minutes on two cores (RELIABILITY.md).
bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/editing.py
	$(BIN)/python bench/keyframes.py
	$(BIN)/python bench/cloud_soak.py

clean:
	rm -rf $(VENV) out .reelflow
