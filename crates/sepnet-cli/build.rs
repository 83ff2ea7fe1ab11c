include!("../testing/data_cfg.rs");
