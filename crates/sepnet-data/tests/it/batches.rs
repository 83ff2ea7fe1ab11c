//! Batches: seeded shuffles, drop-last, normalisation, augmentation, validation split.

use sepnet_data::{
    BatchConfig, Batches, CROP_PADDING, Dataset, InputScaling, Normalization, Shard, Split,
};

/// `n` images of 6×5×2 whose pixels encode (image, channel, y, x).
fn dataset(n: usize) -> Dataset {
    let (h, w, c) = (6, 5, 2);
    let mut images = Vec::new();
    for i in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    images.push(((i * 7 + ch * 50 + y * 5 + x) % 251) as u8 + 1);
                }
            }
        }
    }
    Dataset {
        name: "synthetic".into(),
        classes: (0..10).map(|i| i.to_string()).collect(),
        image_shape: [h, w, c],
        train: Split {
            images,
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        },
        test: Split::default(),
    }
}

fn identity() -> Normalization {
    Normalization {
        mean: vec![0.0, 0.0],
        std: vec![1.0 / 255.0, 1.0 / 255.0],
    }
}

fn config(batch_size: usize, shuffle: bool, drop_last: bool, augment: bool) -> BatchConfig {
    BatchConfig {
        batch_size,
        shuffle,
        drop_last,
        augment,
    }
}

#[test]
fn shuffles_are_seeded_and_cover_every_image_once() {
    let d = dataset(37);
    let labels = |seed, epoch| -> Vec<i64> {
        Batches::new(
            &d.train,
            d.image_shape,
            &identity(),
            config(8, true, false, false),
            seed,
            epoch,
        )
        .flat_map(|b| b.labels)
        .collect()
    };
    assert_eq!(labels(1, 0), labels(1, 0));
    assert_ne!(labels(1, 0), labels(1, 1), "a new order each epoch");
    assert_ne!(labels(1, 0), labels(2, 0), "a new order for another seed");
    // Every image exactly once: first pixels identify images.
    let mut firsts: Vec<i64> = Batches::new(
        &d.train,
        d.image_shape,
        &identity(),
        config(8, true, false, false),
        3,
        0,
    )
    .flat_map(|b| {
        b.images
            .chunks(60)
            .map(|img| img[0].round() as i64)
            .collect::<Vec<_>>()
    })
    .collect();
    firsts.sort();
    let mut expected: Vec<i64> = (0..37).map(|i| ((i * 7) % 251 + 1) as i64).collect();
    expected.sort();
    assert_eq!(firsts, expected);
}

#[test]
fn batch_sizes_and_drop_last() {
    let d = dataset(37);
    let sizes = |drop_last| -> Vec<usize> {
        Batches::new(
            &d.train,
            d.image_shape,
            &identity(),
            config(10, false, drop_last, false),
            0,
            0,
        )
        .map(|b| b.shape[0])
        .collect()
    };
    assert_eq!(sizes(false), vec![10, 10, 10, 7]);
    assert_eq!(sizes(true), vec![10, 10, 10]);
    let b = Batches::new(
        &d.train,
        d.image_shape,
        &identity(),
        config(10, false, true, false),
        0,
        0,
    );
    assert_eq!(b.count(), 3);
}

#[test]
fn normalisation_is_applied_per_channel() {
    let d = dataset(2);
    let norm = Normalization {
        mean: vec![0.5, 0.25],
        std: vec![0.5, 2.0],
    };
    let batch = Batches::new(
        &d.train,
        d.image_shape,
        &norm,
        config(2, false, false, false),
        0,
        0,
    )
    .next()
    .unwrap();
    assert_eq!(batch.shape, [2, 2, 6, 5]);
    let raw = &d.train.images;
    assert!((batch.images[3] - (raw[3] as f32 / 255.0 - 0.5) / 0.5).abs() < 1e-6);
    assert!((batch.images[30 + 3] - (raw[30 + 3] as f32 / 255.0 - 0.25) / 2.0).abs() < 1e-6);
    let computed = Normalization::from_split(&d.train, 2);
    let mean0 = raw
        .chunks(60)
        .flat_map(|img| &img[..30])
        .map(|&v| v as f64 / 255.0)
        .sum::<f64>()
        / 60.0;
    assert!((computed.mean[0] as f64 - mean0).abs() < 1e-6);
}

#[test]
fn input_scalings_give_raw_unit_and_standardised_pixels() {
    let d = dataset(4);
    let first_batch = |scaling| {
        let norm = Normalization::for_dataset(scaling, &d);
        Batches::new(
            &d.train,
            d.image_shape,
            &norm,
            config(4, false, false, false),
            0,
            0,
        )
        .next()
        .unwrap()
        .images
    };
    let raw: Vec<f32> = d.train.images.iter().map(|&v| v as f32).collect();
    let close = |a: &[f32], b: &[f32], tol: f32| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    };
    assert!(close(&first_batch(InputScaling::Raw), &raw, 1e-4));
    let unit: Vec<f32> = raw.iter().map(|v| v / 255.0).collect();
    assert!(close(&first_batch(InputScaling::Unit), &unit, 1e-6));
    // "synthetic" has no published constants: standardising uses the training split's own
    // statistics, so each channel comes out with mean 0 and standard deviation 1.
    let standardized = first_batch(InputScaling::Standardize);
    for channel in 0..2 {
        let values: Vec<f64> = standardized
            .chunks(60)
            .flat_map(|image| &image[channel * 30..(channel + 1) * 30])
            .map(|&v| v as f64)
            .collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "channel {channel}: {mean} {var}"
        );
    }
}

#[test]
fn augmentation_is_a_padded_crop_and_flip_of_the_source() {
    let d = dataset(16);
    let (h, w) = (6usize, 5usize);
    let batches: Vec<_> = Batches::new(
        &d.train,
        d.image_shape,
        &identity(),
        config(16, false, false, true),
        9,
        0,
    )
    .collect();
    let again: Vec<_> = Batches::new(
        &d.train,
        d.image_shape,
        &identity(),
        config(16, false, false, true),
        9,
        0,
    )
    .collect();
    assert_eq!(batches[0].images, again[0].images, "augmentation is seeded");
    let mut flips = 0;
    let mut shifted = 0;
    for (k, out) in batches[0].images.chunks(60).enumerate() {
        let src = &d.train.images[k * 60..(k + 1) * 60];
        let p = CROP_PADDING as isize;
        // Find the (dy, dx, flip) that explains the output exactly.
        let found = (-p..=p)
            .flat_map(|dy| (-p..=p).flat_map(move |dx| [(dy, dx, false), (dy, dx, true)]))
            .find(|&(dy, dx, flip)| {
                (0..2).all(|c| {
                    (0..h).all(|y| {
                        (0..w).all(|x| {
                            let sy = y as isize + dy;
                            let sx = if flip {
                                (w - 1 - x) as isize
                            } else {
                                x as isize
                            } + dx;
                            let expect = if sy < 0 || sy >= h as isize || sx < 0 || sx >= w as isize
                            {
                                0.0
                            } else {
                                src[c * 30 + sy as usize * w + sx as usize] as f32
                            };
                            (out[c * 30 + y * w + x] - expect).abs() < 1e-3
                        })
                    })
                })
            });
        let (dy, dx, flip) =
            found.unwrap_or_else(|| panic!("image {k} is not a crop/flip of its source"));
        flips += flip as usize;
        shifted += (dy != 0 || dx != 0) as usize;
    }
    assert!(flips > 0 && flips < 16, "flips are random: {flips}/16");
    assert!(shifted > 8, "crops are random: {shifted}/16 shifted");
}

#[test]
fn validation_split_is_seeded_and_disjoint() {
    let d = dataset(50);
    let (train, val) = d.validation_split(10, 4).unwrap();
    assert_eq!((train.len(), val.len()), (40, 10));
    let firsts = |s: &Split| -> Vec<u8> { s.images.chunks(60).map(|i| i[0]).collect() };
    let (t, v) = (firsts(&train), firsts(&val));
    assert!(v.iter().all(|x| !t.contains(x)));
    assert_eq!(d.validation_split(10, 4).unwrap().1, val);
    assert_ne!(d.validation_split(10, 5).unwrap().1, val);
    assert!(d.validation_split(50, 4).is_err());
}

#[test]
fn skipping_batches_continues_exactly_where_assembling_them_would() {
    let d = dataset(37);
    for augment in [false, true] {
        let make = || {
            Batches::new(
                &d.train,
                d.image_shape,
                &identity(),
                config(8, true, false, augment),
                7,
                3,
            )
        };
        let all: Vec<_> = make().map(|b| (b.images, b.labels)).collect();
        let mut resumed = make();
        resumed.skip_batches(2);
        let rest: Vec<_> = resumed.map(|b| (b.images, b.labels)).collect();
        assert_eq!(rest, all[2..], "augment = {augment}");
    }
}

/// Data-parallel shards: the processes' parts of each batch, put side by side, are the batch
/// one process makes — the same images, labels, indices and augmentations — for every rank
/// count, also when a batch does not divide evenly (or has fewer images than processes).
#[test]
fn shards_of_every_batch_make_up_the_whole_batch() {
    let d = dataset(23);
    let batches = |shard: Shard| -> Vec<sepnet_data::Batch> {
        let mut b = Batches::new(
            &d.train,
            d.image_shape,
            &identity(),
            config(10, true, false, true),
            5,
            2,
        )
        .shard(shard);
        b.skip_batches(1);
        b.collect()
    };
    let whole = batches(Shard::WHOLE);
    assert_eq!(
        whole.iter().map(|b| b.labels.len()).collect::<Vec<_>>(),
        [10, 3]
    );
    for ranks in [2, 3, 4] {
        let parts: Vec<_> = (0..ranks)
            .map(|rank| batches(Shard { rank, ranks }))
            .collect();
        for (k, batch) in whole.iter().enumerate() {
            let joined = |f: &dyn Fn(&sepnet_data::Batch) -> Vec<f32>| -> Vec<f32> {
                parts.iter().flat_map(|p| f(&p[k])).collect()
            };
            assert_eq!(
                joined(&|b| b.images.clone()),
                batch.images,
                "{ranks} ranks, batch {k}"
            );
            let labels = joined(&|b| b.labels.iter().map(|&l| l as f32).collect());
            let expected: Vec<f32> = batch.labels.iter().map(|&l| l as f32).collect();
            assert_eq!(labels, expected);
            let indices = joined(&|b| b.indices.iter().map(|&i| i as f32).collect());
            let expected: Vec<f32> = batch.indices.iter().map(|&i| i as f32).collect();
            assert_eq!(indices, expected);
            let sizes: Vec<usize> = parts.iter().map(|p| p[k].shape[0]).collect();
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{sizes:?}"
            );
        }
    }
}
