# Vivarium — the two entry points of the README's quick start.
#   make run   set up, build, and boot the demo Linux VM (in the nested rig
#              when this host's KVM has no hardware virtualization)
#   make test  set up, build, and run every test tier
BUILD ?= build

# Debian packages: build tools and libraries (libseccomp-dev: the VM
# process's sandbox); then the test inputs (kernel, busybox, firmware,
# the nested rig's QEMU, qemu-img as an oracle, iasl for the ACPI tables,
# GRUB, xorriso, e2fsprogs and sfdisk for the boot-test images; xorriso
# also makes the guest additions CD, whose static agent links against
# libc6-dev's libc.a; memtest86+ and isolinux/syslinux-common: real boot
# media for the compatibility tests; libpulse-dev: the sound card's host
# side, with pulseaudio, pulseaudio-utils (parecord, paplay) and sox for
# its tests; alsa-utils (aplay, arecord) for the rig's guest image;
# qemu-system-gui for QEMU's audio-pa.so, the sound test's reference;
# swtpm: the TPM behind --tpm, and test_tpm_tis's real TPM).
PACKAGES := gcc make meson ninja-build pkg-config python3 \
	qemu-system-x86 qemu-utils seabios linux-image-amd64 busybox-static \
	cpio xz-utils zstd kmod acpica-tools zlib1g-dev libzstd-dev \
	libglib2.0-dev libjson-glib-dev libslirp-dev libseccomp-dev xorriso \
	libpulse-dev pulseaudio pulseaudio-utils sox alsa-utils qemu-system-gui \
	grub-pc-bin grub-common e2fsprogs fdisk qemu-guest-agent \
	ovmf grub-efi-amd64-bin mtools \
	memtest86+ isolinux syslinux-common debian-installer-12-netboot-amd64 \
	libsdl2-dev libvncserver-dev libpng-dev libx11-dev libxtst-dev libxfixes-dev xvfb xdotool imagemagick \
	libgtk-3-dev python3-pyatspi at-spi2-core dbus-x11 \
	libusb-1.0-0-dev swtpm

.PHONY: all deps build test test-unit test-guest test-e2e run clean

all: build

deps:
	@scripts/install-deps.sh $(PACKAGES)

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: build
	@scripts/run-tests.sh $(BUILD)

test-unit test-guest test-e2e: build
	@scripts/run-tests.sh $(BUILD) $(@:test-%=%)

run: build
	@scripts/run-demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)
