################################################################################
#
# rtflex-apps
#
################################################################################

# The rt-apps cargo workspace, whose root (Cargo.toml, Cargo.lock) is the
# top of the rtflex repository, one level above this external tree.
RTFLEX_APPS_VERSION = 0.1.0
RTFLEX_APPS_SITE = $(BR2_EXTERNAL_RTFLEX_PATH)/..
RTFLEX_APPS_SITE_METHOD = local
# ../LICENSE: SPDX GPL-2.0-only OR MIT (Buildroot writes "or").
RTFLEX_APPS_LICENSE = GPL-2.0-only or MIT
RTFLEX_APPS_LICENSE_FILES = LICENSE LICENSES/GPL-2.0-only.txt LICENSES/MIT.txt

# Copy only what cargo needs, and the license. This keeps out build/, dl/, target/ and any
# Buildroot output directory inside the repository, and the repository's
# .cargo/config.toml (Debian's cross gcc as linker, qemu-user runner): the
# build below writes its own. The first matching rule wins.
RTFLEX_APPS_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=target/ \
	--include=/Cargo.toml \
	--include=/Cargo.lock \
	--include=/LICENSE \
	--include=/LICENSES/*** \
	--include=/rt-apps/*** \
	--exclude=*

# Vendored crates, one directory per Cargo.lock (first 16 hex digits of its
# sha256), kept in the download directory so that rebuilds and other
# output directories work offline once it exists. A local-site package gets
# no vendoring from Buildroot's download step, so it is done here, before
# configure (rsync runs before the dependencies, host-rustc's cargo, are
# ready). cargo vendor --locked fetches exactly the crates of Cargo.lock and
# records their checksums; cargo build --locked then verifies every
# vendored crate against Cargo.lock.
RTFLEX_APPS_VENDOR_BASE = $(DL_DIR)/rtflex-apps

define RTFLEX_APPS_VENDOR_CRATES
	mkdir -p $(RTFLEX_APPS_VENDOR_BASE)
	dir=$(RTFLEX_APPS_VENDOR_BASE)/vendor-$$(sha256sum $(@D)/Cargo.lock | cut -c1-16); \
	$(HOST_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
		flock $(RTFLEX_APPS_VENDOR_BASE) sh -c ' \
			test -d "$$1" && exit 0; \
			rm -rf "$$1.tmp" && \
			cargo vendor --locked --versioned-dirs \
				--manifest-path "$$2/Cargo.toml" "$$1.tmp" >/dev/null && \
			mv "$$1.tmp" "$$1"' sh $$dir $(@D) && \
	mkdir -p $(@D)/.cargo && \
	printf '[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "%s"\n' \
		$$dir > $(@D)/.cargo/config.toml
endef
RTFLEX_APPS_PRE_CONFIGURE_HOOKS += RTFLEX_APPS_VENDOR_CRATES

# Buildroot's cargo environment (PKG_CARGO_ENV) sets the target, its linker
# (the Buildroot toolchain's gcc: an environment variable, which wins over
# any .cargo/config.toml) and profile overrides from BR2_OPTIMIZE_* and
# BR2_ENABLE_LTO. The release profile of our Cargo.toml (opt-level 3, thin
# LTO, one codegen unit) is what the quick path ships and measures: drop
# those overrides so that it applies here too.
RTFLEX_APPS_CARGO = \
	env -u CARGO_PROFILE_RELEASE_OPT_LEVEL \
		-u CARGO_PROFILE_RELEASE_LTO \
		-u CARGO_PROFILE_RELEASE_CODEGEN_UNITS \
	cargo

RTFLEX_APPS_CARGO_OPTS = --offline --release --locked
RTFLEX_APPS_OUT = $(@D)/target/$(RUSTC_TARGET_NAME)/release

# The Kernel Mode Linux programs, listed in rt-apps/kml/static-bins (the
# list scripts/build-rt-apps.sh reads too), run in SYS mode when copied
# into /trusted, where the kernel refuses a program with an ELF
# interpreter: they are linked statically, in their own target directory
# (as in scripts/build-rt-apps.sh).
RTFLEX_APPS_STATIC_PKG = kml
RTFLEX_APPS_STATIC_BINS = \
	$(strip $(shell sed -e 's/\#.*//' $(RTFLEX_APPS_SITE)/rt-apps/$(RTFLEX_APPS_STATIC_PKG)/static-bins))
ifeq ($(BR2_PACKAGE_RTFLEX_APPS)$(RTFLEX_APPS_STATIC_BINS),y)
$(error rtflex-apps: no binaries in $(RTFLEX_APPS_SITE)/rt-apps/$(RTFLEX_APPS_STATIC_PKG)/static-bins)
endif
# The first flag repeats Buildroot's ARM workaround from PKG_CARGO_ENV,
# which this variable replaces.
RTFLEX_APPS_STATIC_ENV = \
	CARGO_TARGET_DIR=$(@D)/target/static \
	CARGO_TARGET_$(call UPPERCASE,$(RUSTC_TARGET_NAME))_RUSTFLAGS="-Clink-arg=-Wl,--allow-multiple-definition -C target-feature=+crt-static"
RTFLEX_APPS_STATIC_OUT = $(@D)/target/static/$(RUSTC_TARGET_NAME)/release

ifeq ($(BR2_PACKAGE_RTFLEX_APPS_GUEST_TESTS),y)
# The guest tests check that the running kernel is the one built here.
define RTFLEX_APPS_BUILD_GUEST_TESTS
	cd $(@D) && \
	$(TARGET_MAKE_ENV) $(TARGET_CONFIGURE_OPTS) $(PKG_CARGO_ENV) \
		RTFLEX_LINUX_VERSION=$(LINUX_VERSION) \
		$(RTFLEX_APPS_CARGO) test $(RTFLEX_APPS_CARGO_OPTS) \
			-p guest-tests --features guest --test '*' --no-run \
			>$(@D)/guest-tests.log 2>&1 || { cat $(@D)/guest-tests.log; exit 1; }
	cat $(@D)/guest-tests.log
	grep -q '^ *Executable tests/' $(@D)/guest-tests.log
endef
# cargo prints "Executable tests/<name>.rs (<path>)" for each test program.
define RTFLEX_APPS_INSTALL_GUEST_TESTS
	mkdir -p $(TARGET_DIR)/usr/lib/rtflex/tests
	sed -n 's|^ *Executable tests/\([A-Za-z0-9_]*\)\.rs (\(.*\))$$|\1 \2|p' \
		$(@D)/guest-tests.log | \
	while read -r name exe; do \
		case $$exe in /*) ;; *) exe=$(@D)/$$exe ;; esac; \
		$(INSTALL) -m 0755 $$exe $(TARGET_DIR)/usr/lib/rtflex/tests/$$name || exit 1; \
	done
endef
endif

define RTFLEX_APPS_BUILD_CMDS
	cd $(@D) && \
	$(TARGET_MAKE_ENV) $(TARGET_CONFIGURE_OPTS) $(PKG_CARGO_ENV) \
		$(RTFLEX_APPS_CARGO) build $(RTFLEX_APPS_CARGO_OPTS) --workspace --bins
	cd $(@D) && \
	$(TARGET_MAKE_ENV) $(TARGET_CONFIGURE_OPTS) $(PKG_CARGO_ENV) \
		$(RTFLEX_APPS_STATIC_ENV) \
		$(RTFLEX_APPS_CARGO) build $(RTFLEX_APPS_CARGO_OPTS) \
			--workspace $(addprefix --bin=,$(RTFLEX_APPS_STATIC_BINS))
	$(foreach b,$(RTFLEX_APPS_STATIC_BINS),
		if $(TARGET_READELF) -l $(RTFLEX_APPS_STATIC_OUT)/$(b) | grep -q INTERP; then \
			echo "$(b) is not statically linked" >&2; exit 1; \
		fi)
	$(RTFLEX_APPS_BUILD_GUEST_TESTS)
endef

# Every workspace binary goes to /usr/bin; the KML programs then replace
# their dynamic builds there and go to /usr/lib/rtflex/kml/ too, never to
# /trusted (the image keeps no program there; its owner and mode come from
# ../rootfs/permissions.txt, a BR2_ROOTFS_DEVICE_TABLE of the defconfigs).
# plant-sim's parameters are the plant crate's own file (as in
# scripts/build-rt-apps.sh).
define RTFLEX_APPS_INSTALL_TARGET_CMDS
	find $(RTFLEX_APPS_OUT) -maxdepth 1 -type f -perm -u+x \
		-exec $(INSTALL) -D -m 0755 -t $(TARGET_DIR)/usr/bin {} +
	$(INSTALL) -D -m 0644 $(@D)/rt-apps/plant/plant.conf $(TARGET_DIR)/etc/rtflex/plant.conf
	$(foreach b,$(RTFLEX_APPS_STATIC_BINS),
		$(INSTALL) -D -m 0755 $(RTFLEX_APPS_STATIC_OUT)/$(b) $(TARGET_DIR)/usr/bin/$(b)
		$(INSTALL) -D -m 0755 $(RTFLEX_APPS_STATIC_OUT)/$(b) $(TARGET_DIR)/usr/lib/rtflex/kml/$(b))
	$(RTFLEX_APPS_INSTALL_GUEST_TESTS)
endef

$(eval $(cargo-package))
