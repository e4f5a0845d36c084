"""The checks of notebook 06's exercises: right answers pass, typical wrong ones fail with a useful message."""

from nlp_course.exercises import check, registered


def accumulated_gradients(model, input_ids, grad_accumulation):
    losses = []
    for micro_batch in input_ids.chunk(grad_accumulation):
        loss = model(input_ids=micro_batch, labels=micro_batch).loss
        (loss / grad_accumulation).backward()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def is_config_or_test(text, scan_lines=5, coeff=0.05):
    head = [line.lower() for line in text.splitlines()[:scan_lines]]
    if any(k in line for line in head for k in ("unit tests", "test file", "configuration file")):
        return True
    threshold = int(coeff * text.count("\n"))
    return text.lower().count("config") > threshold or text.lower().count("test") > threshold


def has_no_keywords(text):
    return not any(k in line.lower() for line in text.splitlines() for k in ("def ", "class ", "for ", "while "))


def has_few_assignments(text, minimum=4):
    return text.count("=") <= minimum


FILTERS = (is_config_or_test, has_no_keywords, has_few_assignments)


def wrong(number, answer):
    verdict = check("06", number, answer, quiet=True)
    assert not verdict, f"accepted a wrong answer: {verdict.message}"
    return verdict.message


def test_registered():
    assert [n for _, n in registered("06")] == [2, 3, 4]


def test_unanswered_starter_cells_do_not_raise():
    assert "not answered yet" in check("06", 2, ..., quiet=True).message
    for number in (2, 4):
        assert "not answered yet" in wrong(number, lambda *args: None)
    assert "not answered yet" in wrong(3, (lambda text: None,) * 3)


def test_gradient_accumulation():
    assert check("06", 2, accumulated_gradients, quiet=True)

    def unscaled(model, ids, steps):
        for micro in ids.chunk(steps):
            model(input_ids=micro, labels=micro).loss.backward()
        return model(input_ids=ids, labels=ids).loss.item()

    def zero_each_time(model, ids, steps):
        for micro in ids.chunk(steps):
            model.zero_grad()
            loss = model(input_ids=micro, labels=micro).loss
            (loss / steps).backward()
        return loss.item()

    def scaled_loss(model, ids, steps):
        return accumulated_gradients(model, ids, steps) / steps

    def last_loss(model, ids, steps):
        accumulated_gradients(model, ids, steps)
        last = ids.chunk(steps)[-1]
        return model(input_ids=last, labels=last).loss.item()

    assert "2.00 times the whole batch's" in wrong(2, unscaled)
    assert "last micro-batch's alone" in wrong(2, zero_each_time)
    assert "the one you backpropagate" in wrong(2, scaled_loss)
    assert "logs only the last micro-batch's loss" in wrong(2, last_loss)
    assert "no gradient" in wrong(2, lambda model, ids, steps: 1.0)


def test_filters():
    assert check("06", 3, FILTERS, quiet=True)
    anywhere = lambda text: "test" in text.lower() or "config" in text.lower()  # noqa: E731
    assert "says 'test' once" in wrong(3, (anywhere, has_no_keywords, has_few_assignments))
    all_lines = lambda t: any(k in t.lower() for k in ("unit tests", "test file", "configuration file"))  # noqa: E731
    assert "tenth line" in wrong(3, (lambda t: all_lines(t) or is_config_or_test(t), has_no_keywords, has_few_assignments))
    assert "for loop" in wrong(3, (is_config_or_test, lambda t: "def " not in t and "class " not in t, has_few_assignments))
    assert "defaults = ..." in wrong(3, (is_config_or_test, lambda t: "def" not in t and "class" not in t and
                                         "for " not in t and "while " not in t, has_few_assignments))
    assert "exactly four" in wrong(3, (is_config_or_test, has_no_keywords, lambda t: t.count("=") < 4))
    assert "return True or False" in wrong(3, (is_config_or_test, has_no_keywords,
                                                lambda t: {"has_few_assignments": has_few_assignments(t)}))
    assert "in that order" in wrong(3, is_config_or_test)


def test_batches_to_skip():
    assert check("06", 4, lambda step, batch, accumulation, processes: step * accumulation, quiet=True)
    assert "2 micro-batches" in wrong(4, lambda step, batch, accumulation, processes: step)
    assert "counts sequences" in wrong(4, lambda step, batch, accumulation, processes: step * accumulation * batch)
    assert "its own DataLoader" in wrong(4, lambda step, batch, accumulation, processes: step * accumulation * processes)
    assert "off by one" in wrong(4, lambda step, batch, accumulation, processes: (step + 1) * accumulation)
    assert "whole number" in wrong(4, lambda step, batch, accumulation, processes: step * accumulation / 3)
