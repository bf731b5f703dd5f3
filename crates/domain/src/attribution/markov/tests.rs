use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;

use super::*;

fn worked_example() -> MarkovModel<&'static str> {
    MarkovModel::train(
        &[
            (vec!["GA"], true),
            (vec!["GA"], true),
            (vec!["mailing"], true),
            (vec!["GA", "mailing"], true),
            (vec!["GA"], false),
        ],
        1,
    )
}

fn six_places(x: f64) -> Decimal {
    Decimal::from_f64(x).unwrap().round_dp(6)
}

#[test]
fn published_worked_example() {
    let model = worked_example();
    let effects: Vec<(&str, Decimal)> = model.removal_effects().map(|(k, e)| (*k, six_places(e))).collect();
    assert_eq!(effects, vec![("GA", Decimal::new(75, 2)), ("mailing", Decimal::new(5, 1))]);
    let credit: Vec<(&str, Decimal)> =
        model.total_credit(4.0).into_iter().map(|(k, c)| (k, six_places(c))).collect();
    assert_eq!(credit, vec![("GA", Decimal::new(24, 1)), ("mailing", Decimal::new(16, 1))]);
    assert_eq!((model.trained_on, model.conversions(), model.is_usable()), (5, 4, true));
}

#[test]
fn repeats_and_empty_journeys_change_nothing() {
    let plain = worked_example();
    let noisy = MarkovModel::train(
        &[
            (vec!["GA", "GA"], true),
            (vec!["GA"], true),
            (vec!["mailing", "mailing", "mailing"], true),
            (vec!["GA", "GA", "mailing"], true),
            (vec!["GA"], false),
            (vec![], true),
            (vec![], false),
        ],
        1,
    );
    assert_eq!(noisy.trained_on, 5);
    for ((_, a), (_, b)) in plain.removal_effects().zip(noisy.removal_effects()) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn says_why_it_cannot_be_used() {
    let model = worked_example();
    assert!(
        MarkovModel::train(&[(vec!["GA"], true)], 2).unusable_reason().unwrap().contains("too little data")
    );
    let never = MarkovModel::train(&[(vec!["GA"], false), (vec!["GA", "x"], false)], 1);
    assert_eq!(never.unusable_reason().as_deref(), Some("no conversions in the training data"));
    assert_eq!(never.removal_effect(&"GA"), Some(0.0));
    assert!(MarkovModel::<u8>::train(&[], 0).total_credit(3.0).is_empty());
    assert_eq!(model.removal_effect(&"unknown"), None);
    assert_eq!(model.min_journeys(), 1);
}

#[test]
fn a_channel_that_only_ever_loses_has_no_effect() {
    let model = MarkovModel::train(&[(vec![1, 2], true), (vec![3], false), (vec![1, 3], false)], 1);
    assert_eq!(model.removal_effect(&3), Some(0.0));
    assert!(model.removal_effect(&2).unwrap() > 0.0);
}

/// The definition, one solve per channel: the channel becomes a dead end.
fn removal_effects_by_definition(chain: &Chain) -> Vec<f64> {
    let size = chain.transient.len();
    let converts = |removed: Option<usize>| {
        let mut system = vec![0.0; size * size];
        let mut rates = vec![0.0; size];
        for (s, row) in chain.transient.iter().enumerate() {
            system[s * size + s] = 1.0;
            let total: f64 = row.iter().sum::<f64>() + chain.to_conversion[s] + chain.to_null[s];
            if total == 0.0 || Some(s) == removed {
                continue;
            }
            for (t, &count) in row.iter().enumerate() {
                if Some(t) != removed {
                    system[s * size + t] -= count / total;
                }
            }
            rates[s] = chain.to_conversion[s] / total;
        }
        let inverse = invert(system, size).unwrap();
        (0..size).map(|t| inverse[t] * rates[t]).sum::<f64>()
    };
    let base = converts(None);
    (1..size).map(|c| if base > 0.0 { (1.0 - converts(Some(c)) / base).max(0.0) } else { 0.0 }).collect()
}

fn arbitrary_journeys() -> impl Strategy<Value = Vec<(Vec<u8>, bool)>> {
    proptest::collection::vec((proptest::collection::vec(0u8..6, 0..7), any::<bool>()), 0..40)
}

proptest! {
    #[test]
    fn one_inversion_matches_one_solve_per_channel(journeys in arbitrary_journeys()) {
        let model = MarkovModel::train(&journeys, 0);
        let channels: Vec<u8> = model.removal_effects().map(|(k, _)| *k).collect();
        let expected = removal_effects_by_definition(&Chain::count(&channels, &journeys));
        for ((_, effect), want) in model.removal_effects().zip(expected) {
            prop_assert!((0.0..=1.0).contains(&effect));
            prop_assert!((effect - want).abs() < 1e-9, "{} vs {}", effect, want);
        }
    }

    #[test]
    fn training_a_journey_at_a_time_in_any_order_gives_the_same_model(
        journeys in arbitrary_journeys(),
        rotate in 0usize..40,
    ) {
        let whole = MarkovModel::train(&journeys, 3);
        let mut trainer = MarkovTrainer::new();
        let mut shuffled = journeys.clone();
        shuffled.reverse();
        let by = rotate.min(shuffled.len());
        shuffled.rotate_left(by);
        for (path, converted) in &shuffled {
            trainer.add(path, *converted);
        }
        let streamed = trainer.finish(3);
        prop_assert_eq!(streamed.trained_on, whole.trained_on);
        prop_assert_eq!(streamed.conversions(), whole.conversions());
        prop_assert_eq!(streamed.unusable_reason(), whole.unusable_reason());
        let effects = |model: &MarkovModel<u8>| model.removal_effects().map(|(k, e)| (*k, e)).collect::<Vec<_>>();
        prop_assert_eq!(effects(&streamed), effects(&whole));
    }

    #[test]
    fn total_credit_adds_up_to_the_conversions(journeys in arbitrary_journeys(), total in 1.0f64..1e6) {
        let model = MarkovModel::train(&journeys, 0);
        let credit: f64 = model.total_credit(total).iter().map(|(_, c)| c).sum();
        if model.removal_effects().any(|(_, e)| e > 0.0) {
            prop_assert!((credit - total).abs() < 1e-6 * total);
        } else {
            prop_assert_eq!(credit, 0.0);
        }
    }
}
