//! Hinton, Vinyals & Dean's distillation loss (arXiv:1503.02531): the student matches the
//! teacher's outputs softened by a temperature as well as the labels.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};

/// `T² · KL(softmax(teacher/T) ‖ softmax(student/T))`, averaged over the batch. The T² keeps
/// the term's gradients the size of the cross-entropy's whatever the temperature (they shrink
/// as 1/T² otherwise). The teacher's logits are constants: no gradient flows into them.
///
/// ```
/// use burn::tensor::{Device, Tensor, TensorData};
/// use sepnet_train::distill::soft_loss;
/// let device = Device::flex();
/// let logits = |v: [f32; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, 2]), &device);
/// // Identical outputs: nothing to learn from the teacher.
/// let same = soft_loss(logits([1.0, 3.0]), logits([1.0, 3.0]), 2.0);
/// assert!(same.into_scalar::<f32>().abs() < 1e-6);
/// ```
pub fn soft_loss(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let t = temperature as f32;
    let teacher = teacher.div_scalar(t).autodiff();
    let targets = softmax(teacher.clone(), 1);
    let log_targets = log_softmax(teacher, 1);
    let log_student = log_softmax(student.div_scalar(t), 1);
    (targets * (log_targets - log_student))
        .sum_dim(1)
        .mean()
        .mul_scalar(t * t)
}

/// `weight · soft + (1 − weight) · hard`: the distillation term and the labels' cross-entropy
/// mixed as Hinton et al. (and Keras's `Distiller`) mix them.
pub fn mix(soft: Tensor<1>, hard: Tensor<1>, weight: f64) -> Tensor<1> {
    soft.mul_scalar(weight as f32) + hard.mul_scalar((1.0 - weight) as f32)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn logits(rows: &[[f32; 3]], device: &Device) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), device)
    }

    /// softmax by hand, in f64.
    fn soft(row: [f32; 3], t: f64) -> [f64; 3] {
        let e = row.map(|v| (v as f64 / t).exp());
        let sum: f64 = e.iter().sum();
        e.map(|v| v / sum)
    }

    /// In f32 the T² factor magnifies the rounding of the log-probabilities: 1e-4 relative.
    #[test]
    fn soft_loss_matches_a_hand_computed_example() {
        let device = Device::flex();
        let (student, teacher) = (
            [[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]],
            [[3.0, 1.0, -2.0], [-1.0, 2.5, 0.5]],
        );
        for t in [1.0, 2.0, 20.0] {
            let mut expected = 0.0;
            for (s, q) in student.iter().zip(&teacher) {
                let (p, q) = (soft(*q, t), soft(*s, t));
                expected += (0..3).map(|i| p[i] * (p[i] / q[i]).ln()).sum::<f64>();
            }
            expected *= t * t / 2.0;
            let got = soft_loss(logits(&student, &device), logits(&teacher, &device), t)
                .into_scalar::<f32>() as f64;
            assert!(
                (got - expected).abs() < 1e-4 * expected.max(1.0),
                "T = {t}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn the_weight_mixes_the_two_terms() {
        let device = Device::flex();
        let one = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device);
        let mixed = |w| mix(one(2.0), one(10.0), w).into_scalar::<f32>();
        assert_eq!((mixed(0.0), mixed(1.0), mixed(0.25)), (10.0, 2.0, 8.0));
    }

    /// d(T²·KL)/d(student) = T · (softmax(student/T) − softmax(teacher/T)) per image.
    #[test]
    fn the_student_gets_hintons_gradient() {
        let device = Device::flex().autodiff();
        let (s, q, t) = ([0.3, -0.2, 1.0], [1.0, 0.0, -1.0], 3.0);
        let student = logits(&[s], &device).require_grad();
        let teacher = logits(&[q], &device.clone().inner());
        let grads = soft_loss(student.clone(), teacher, t).backward();
        let got: Vec<f32> = student
            .grad(&grads)
            .expect("a gradient")
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let (ps, pt) = (soft(s, t), soft(q, t));
        for i in 0..3 {
            let expected = t * (ps[i] - pt[i]);
            assert!(
                (got[i] as f64 - expected).abs() < 1e-5,
                "{got:?}, {i}: {expected}"
            );
        }
    }
}
