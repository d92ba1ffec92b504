//! The image's parameter file (rootfs/overlay/etc/rtflex/plant.conf, read
//! by plant-sim in the guest) is a copy of the crate's plant.conf
//! (plant::DEFAULT_PARAMS, which the host tests use): one plant everywhere.

#[test]
fn image_parameter_file_is_the_crate_s_plant_conf() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../rootfs/overlay/etc/rtflex/plant.conf"
    );
    let image = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        image == plant::DEFAULT_PARAMS,
        "{path} differs from rt-apps/plant/plant.conf: copy it over \
         (cp rt-apps/plant/plant.conf rootfs/overlay/etc/rtflex/plant.conf)"
    );
}
