"""The email bodies (string.Template): kept as module text, not files, so every install (wheel,
image) carries them without package-data rules. `$details` is the payload's fields, one per
line in the text part and one table row each in the HTML part."""

from string import Template

TEXT = Template(
    """ValueVerse notification: $event_type

Subject:     $subject
Customer:    $customer
Recorded at: $recorded_at UTC
Id:          $notification_id

$details

This message is sent at least once: the id above is the same on every copy.
"""
)

HTML = Template(
    """<!doctype html>
<html><body style="font-family: sans-serif">
<h2>ValueVerse notification: $event_type</h2>
<table>
<tr><th align="left">Subject</th><td>$subject</td></tr>
<tr><th align="left">Customer</th><td>$customer</td></tr>
<tr><th align="left">Recorded at</th><td>$recorded_at UTC</td></tr>
<tr><th align="left">Id</th><td><code>$notification_id</code></td></tr>
</table>
<table>
$details
</table>
<p style="color: #666">
This message is sent at least once: the id above is the same on every copy.
</p>
</body></html>
"""
)
