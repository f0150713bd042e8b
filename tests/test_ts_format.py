"""The UEA .ts reader on the shared JapaneseVowels files and on small hand-written files."""

from __future__ import annotations

import numpy as np
import pytest

from one4all.data.formats.uea import read_ts
from one4all.errors import UserError

SMALL = """# a comment line
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1,2,3:4,5,6:up
# comments may sit between instances
7,?,9,10:11,12,13,14:down

0.5:1.5,2.5:up
"""


def test_japanese_vowels_counts(data_root):
    train = read_ts(data_root / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
    test = read_ts(data_root / "JapaneseVowels" / "JapaneseVowels_TEST.ts")
    assert (len(train.series), len(test.series)) == (270, 370)
    assert train.n_dims == test.n_dims == 12
    assert train.class_names == [str(c) for c in range(1, 10)]
    assert sorted(set(train.labels)) == sorted(set(test.labels)) == train.class_names
    assert [train.labels.count(str(c)) for c in range(1, 10)] == [30] * 9
    assert (train.lengths.min(), train.lengths.max()) == (7, 26)
    assert (test.lengths.min(), test.lengths.max()) == (7, 29)
    assert train.series[0].shape == (20, 12)
    assert train.series[0][0, 0] == pytest.approx(1.860936)
    assert not any(np.isnan(s).any() for s in train.series + test.series)


def test_unequal_lengths_missing_values_and_comments(tmp_path):
    path = tmp_path / "tiny.ts"
    path.write_text(SMALL)
    data = read_ts(path)
    assert data.labels == ["up", "down", "up"] and data.class_names == ["up", "down"]
    assert [s.shape for s in data.series] == [(3, 2), (4, 2), (2, 2)]
    assert data.series[0].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert np.isnan(data.series[1][1, 0]) and data.series[1][3].tolist() == [10, 14]
    # a dimension shorter than its sibling is padded with NaN (missing)
    assert data.series[2][0].tolist() == [0.5, 1.5] and np.isnan(data.series[2][1, 0])
    assert data.header["problemname"] == "Tiny"


@pytest.mark.parametrize(("text", "message"), [
    ("@classLabel true a b\n@data\n1,2:c\n", "not declared"),
    ("@classLabel true a\n1,2:a\n", "before the @data"),
    ("@classLabel true a\n", "no @data"),
    ("@classLabel true a\n@data\n1,x:a\n", "non-numeric"),
    ("@classLabel true a\n@data\n1,2:3,4:a\n5:a\n", "same dimensions"),
    ("@timeStamps true\n@data\n(0,1),(1,2):a\n", "timeStamps"),
    ("@dimensions 3\n@classLabel true a\n@data\n1:2:a\n", "@dimensions 3"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.ts"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        read_ts(path)
    assert "\n" not in str(err.value)
