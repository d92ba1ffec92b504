//! `servo spi-id`: the JEDEC ID of a SPI NOR flash through spidev, with
//! linux-embedded-hal's `SpidevDevice` (an embedded-hal `SpiDevice`) and
//! the core's [`crate::spi_nor::read_jedec_id`].

use crate::spi_nor::{read_jedec_id, JedecId};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::SpidevDevice;

/// Opens `device` (e.g. `/dev/spidev0.0`), sets mode 0, 8 bits, `speed_hz`
/// and reads the ID. The error says what failed.
pub fn read_id(device: &str, speed_hz: u32) -> Result<JedecId, String> {
    let mut dev = SpidevDevice::open(device).map_err(|e| {
        let hint = if e.inner().kind() == std::io::ErrorKind::NotFound {
            " (no such spidev device: is the flash bound to spidev? see docs/control-app.md)"
        } else {
            ""
        };
        format!("cannot open {device}: {}{hint}", e.inner())
    })?;
    dev.0
        .configure(
            &SpidevOptions::new()
                .bits_per_word(8)
                .max_speed_hz(speed_hz)
                .mode(SpiModeFlags::SPI_MODE_0)
                .build(),
        )
        .map_err(|e| format!("cannot configure {device}: {e}"))?;
    read_jedec_id(&mut dev).map_err(|e| format!("SPI transfer on {device} failed: {}", e.inner()))
}
