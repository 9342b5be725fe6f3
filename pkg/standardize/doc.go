// Package standardize cleans one event in place so that every profile is
// built from the same spellings and formats, whatever SDK or backend sent it.
// It is part of the validator's pure core: the validator reads an Envelope
// from cdp.events.raw, checks it (validation), standardizes it (this
// package), applies the source's PII policy (pii) and writes it to
// cdp.events.valid, or to cdp.events.invalid with the violations. No I/O.
//
// Event fixes what it can and returns, as REASON_FORMAT_VIOLATION
// violations, what it found wrong and could not fix; whether such an event is
// kept (with the violations recorded) or rejected is the validator's policy,
// not this package's. A value it cannot fix is left as it was sent. A
// violation's detail says what is wrong without quoting the value: violations
// are stored with the event, where the source's PII policy does not reach.
//
// # Rules
//
// Identifiers. userId, anonymousId, groupId, previousId and the track event
// name are trimmed of surrounding white space (Unicode spaces plus U+200B and
// the U+FEFF byte-order mark, which spreadsheet exports leave behind). An id
// that becomes empty stays empty: inventing one would merge strangers. When
// trimming empties a field the call needs (userId and anonymousId both, a
// track's event name, a group's groupId, an alias's previousId), that is
// reported with rule "required".
//
// Timestamps. timestamp, originalTimestamp, sentAt and receivedAt are
// truncated to whole milliseconds (protobuf timestamps are UTC by
// definition). Millisecond precision is what SDKs send and what ClickHouse
// stores, so every stage compares the same instant. An out-of-range
// timestamp is reported with rule "timestamp".
//
// Reserved traits. Segment's reserved traits are renamed to their canonical
// key when sent under another spelling: in traits (group traits use the
// group list below, every other call's traits the user list) and in
// context.traits on any call (user list). A key matches when, lower-cased and with
// spaces, underscores, hyphens and dots removed, it is one of the spellings
// below: "First Name", "first_name", "FIRSTNAME" and "first-name" all become
// firstName. Keys starting with "_" or "$" are never renamed (they are other
// tools' system fields, e.g. "_id", "$email"). When the canonical key is
// already present it wins: the other spelling is kept untouched and nothing is
// reported; of several other spellings, the first one sent is renamed. A
// renamed member keeps its position.
//
// User traits (identify traits, context.traits):
//
//	address     address                      (object; its keys below)
//	age         age
//	avatar      avatar, avatarurl
//	birthday    birthday, birthdate, dateofbirth, dob
//	company     company                      (object)
//	createdAt   createdat
//	description description
//	email       email, e_mail, emailaddress
//	firstName   firstname, givenname
//	gender      gender
//	id          id
//	lastName    lastname, surname, familyname
//	name        name, fullname
//	phone       phone, phonenumber, mobile, mobilephone, mobilenumber, telephone
//	title       title, jobtitle
//	username    username
//	website     website
//
// Group traits: address, avatar, createdAt, description, email, employees,
// id, industry, name, phone, plan and website, with the same spellings.
// Inside an address object: city; country; postalCode (postalcode, zip,
// zipcode, postcode); state (state, province); street (street,
// streetaddress).
//
// Values of reserved traits (the canonical members only):
//
//   - email: trimmed and lower-cased when it is a valid address:
//     net/mail.ParseAddress accepts it as a bare address (no display name)
//     and its domain has a dot. Otherwise it is reported (rule "email") and
//     left as sent, trimmed. Lower-casing the local part is not what RFC 5321
//     promises, but it is what every large mail provider does, and an email
//     is an identity key: "Ada@X.io" and "ada@x.io" must be one person.
//   - phone: parsed with libphonenumber's rules (github.com/nyaruka/phonenumbers),
//     in Options.DefaultRegion when the number has no +country code, and
//     written in E.164 ("+4915112345678"; an extension is kept as
//     ";ext=123", RFC 3966's syntax). A number that does not parse or is
//     not valid for its country is reported (rule "phone") and left as
//     sent. Numbers sent as JSON numbers are read as their digits. A number
//     without "+" that starts with the default region's own country code and
//     is valid in that region when read with a "+" is read so
//     ("4915112345678" in DE is +49 151 12345678): libphonenumber alone would
//     call it a German national number, +494915112345678, because German
//     numbers vary in length, while numbers stored without their "+" are far
//     more common than national numbers without their trunk "0".
//   - age: a string holding a JSON number ("42", " 42 ") becomes that
//     number (42). Anything else that is not a number is reported (rule
//     "number").
//   - createdAt, birthday: an ISO-8601 string (with or without time,
//     fraction or zone; no zone means UTC) or a Unix time as a JSON number
//     (seconds when its magnitude is below 1e11, i.e. before the year 5138,
//     else milliseconds) becomes an ISO-8601 UTC string with milliseconds,
//     "2024-05-01T10:00:00.000Z". Digit-only strings are not taken as Unix
//     times: "20240501" is ISO-8601's basic date format, and guessing would
//     move a birthday to 1970. Anything else is reported (rule "timestamp").
//   - null and empty strings mean "no value" and are left alone.
//
// Nothing else is coerced or rejected. In particular "true"/"false" strings
// stay strings: a trait's type is the sender's contract with its tracking
// plan, which reports a wrong type instead of having it guessed away;
// "yes", "1" and "ja" are booleans only to some readers; and a string that
// looks boolean may be a legitimate answer ("true" as a survey option).
//
// # Losslessness
//
// Only the objects a rule changed are rewritten, through jsonedit: key order,
// duplicate keys, number text and the escapes of untouched strings stay as
// sent; the rewritten object loses only insignificant white space between its
// own members. properties are never changed.
package standardize
