from project.data.builtin import unique_labelled_rows


def test_unique_labelled_rows_keep_each_text_once_and_count_what_they_drop():
    pairs = [(" a ", "x"), ("", "x"), ("b", None), ("a", "y"), ("c", "y"), ("d", "x"), (None, "x")]
    rows, dropped = unique_labelled_rows(pairs, excluded={"d"})
    assert rows == [{"text": "a", "label": "x"}, {"text": "c", "label": "y"}]
    assert dropped == {"empty": 2, "unlabelled": 1, "duplicate": 2}
