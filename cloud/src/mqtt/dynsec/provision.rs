//! The commands that set up the cloud's own role and each device's login,
//! and the answers that count as success. Every batch is idempotent: it
//! creates what is missing and accepts "already exists" / "not found", so a
//! retry, a second cloud node or a restart does no harm.

use std::time::Duration;

use lastseen_shared::{DeviceId, Secret, Topics};

use super::commands::{Acl, Command, OneClient, Response, RoleRef, errors};
use super::roles::{self, CLOUD_ROLE, DEVICE_TEXTNAME};
use super::{DynsecClient, DynsecError};

/// Attempts for a batch the broker may not have received (lost
/// connection, no answer), waiting `RETRY_FIRST_WAIT`, then twice as long
/// each time.
const ATTEMPTS: u32 = 5;
pub(crate) const RETRY_FIRST_WAIT: Duration = Duration::from_secs(1);

/// `createRole` with the ACLs, then each ACL again (a role made by an
/// earlier release or for another prefix lacks some), without removing any.
fn role_commands(rolename: &str, textname: &str, acls: Vec<Acl>) -> Vec<Command> {
    let mut commands = vec![Command::CreateRole {
        rolename: rolename.to_owned(),
        textname: textname.to_owned(),
        acls: acls.clone(),
    }];
    commands.extend(acls.into_iter().map(|acl| Command::AddRoleAcl {
        rolename: rolename.to_owned(),
        acl,
    }));
    commands
}

/// The cloud's role, made before it subscribes to anything, and a look at
/// whether its own broker user (the dynamic-security admin) has it.
/// Mosquitto 2.0.11 ends every session of the role's clients when an ACL
/// is added, so a node whose prefix or group changed is disconnected once
/// here (and reconnects); ACLs that exist change nothing.
pub(crate) fn cloud_role_commands(topics: &Topics, group: &str, cloud_user: &str) -> Vec<Command> {
    let mut commands = role_commands(
        CLOUD_ROLE,
        "lastseen cloud nodes",
        roles::cloud_acls(topics, group),
    );
    commands.push(Command::GetClient {
        username: cloud_user.to_owned(),
    });
    commands
}

/// Whether the cloud's user already has its role, from the answers to
/// [`cloud_role_commands`].
pub(crate) fn cloud_has_role(answers: &[Response]) -> Result<bool, DynsecError> {
    check(answers, &[errors::ROLE_EXISTS, errors::ACL_EXISTS])?;
    let found = answers
        .iter()
        .rev()
        .find(|answer| answer.command == "getClient")
        .and_then(|answer| answer.data.clone())
        .map(serde_json::from_value::<OneClient>)
        .transpose()
        .map_err(|e| DynsecError::Answer {
            command: "getClient".into(),
            message: e.to_string(),
        })?
        .ok_or_else(|| DynsecError::Answer {
            command: "getClient".into(),
            message: "no client data".into(),
        })?;
    Ok(found
        .client
        .roles
        .iter()
        .any(|role| role.rolename == CLOUD_ROLE))
}

/// Gives the cloud's user its role. Mosquitto 2.0.11 then ends every
/// session of that user, this one included: done once per deployment.
pub(crate) fn cloud_join_commands(cloud_user: &str) -> Vec<Command> {
    vec![Command::AddClientRole {
        username: cloud_user.to_owned(),
        rolename: CLOUD_ROLE.to_owned(),
    }]
}

pub(crate) fn check_answers(answers: &[Response]) -> Result<(), DynsecError> {
    check(answers, &[])
}

/// Every answer succeeded, or failed only with one of `accepted`.
fn check(answers: &[Response], accepted: &[&str]) -> Result<(), DynsecError> {
    for answer in answers {
        if let Some(error) = &answer.error
            && !accepted.contains(&error.as_str())
        {
            return Err(DynsecError::Refused {
                command: answer.command.clone(),
                error: error.clone(),
            });
        }
    }
    Ok(())
}

fn client_exists(answers: &[Response]) -> bool {
    answers.iter().any(|answer| {
        answer.command == "createClient" && answer.error.as_deref() == Some(errors::CLIENT_EXISTS)
    })
}

/// The device's login with `token` as its password: a new client and role,
/// or a new password for an existing client, which ends its sessions.
pub(crate) async fn issue(
    client: &DynsecClient,
    topics: &Topics,
    device: DeviceId,
    token: &Secret,
) -> Result<(), DynsecError> {
    let rolename = roles::device_role(device);
    let username = device.to_string();
    let mut commands = role_commands(
        &rolename,
        DEVICE_TEXTNAME,
        roles::device_acls(topics, device),
    );
    commands.push(Command::CreateClient {
        username: username.clone(),
        // A device logs in with client id = username = its id; fixing the
        // client id here makes the broker refuse any other.
        clientid: username.clone(),
        password: token.clone(),
        textname: DEVICE_TEXTNAME.to_owned(),
        roles: vec![RoleRef {
            rolename: rolename.clone(),
        }],
    });
    let answers = client.call(commands).await?;
    if !client_exists(&answers) {
        return check(&answers, &[errors::ROLE_EXISTS, errors::ACL_EXISTS]);
    }
    check(
        &answers,
        &[
            errors::ROLE_EXISTS,
            errors::ACL_EXISTS,
            errors::CLIENT_EXISTS,
        ],
    )?;
    // The new password ends the old sessions. The role normally came with
    // the client; adding it again repairs a client that lacks it, and
    // Mosquitto 2.0.11 answers "Internal error" when it is there already,
    // so only the password's answer decides.
    let answers = client
        .call(vec![
            Command::SetClientPassword {
                username: username.clone(),
                password: token.clone(),
            },
            Command::AddClientRole { username, rolename },
        ])
        .await?;
    if let Some(role) = answers.get(1).and_then(|answer| answer.error.as_deref()) {
        tracing::debug!(%device, error = role, "addClientRole on a rotated device");
    }
    check(answers.get(..1).unwrap_or_default(), &[])
}

/// Deletes the device's login and role; the broker ends its sessions.
pub(crate) async fn remove(client: &DynsecClient, device: DeviceId) -> Result<(), DynsecError> {
    let answers = client
        .call(vec![
            Command::DeleteClient {
                username: device.to_string(),
            },
            Command::DeleteRole {
                rolename: roles::device_role(device),
            },
        ])
        .await?;
    check(
        &answers,
        &[errors::CLIENT_NOT_FOUND, errors::ROLE_NOT_FOUND],
    )
}

/// Runs `attempt` until it succeeds, fails for good, or `ATTEMPTS` are
/// used, waiting `first_wait` (then twice as long each time) in between.
pub(crate) async fn with_retries<F, Fut>(
    what: &str,
    first_wait: Duration,
    mut attempt: F,
) -> Result<(), DynsecError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), DynsecError>>,
{
    let mut wait = first_wait;
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(error) if error.is_transient() && tries < ATTEMPTS => {
                tracing::warn!(%error, what, retry_in = ?wait, "dynamic-security command failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(command: &str, error: Option<&str>) -> Response {
        Response {
            command: command.to_owned(),
            error: error.map(str::to_owned),
            data: None,
            correlation: None,
        }
    }

    fn get_client(roles: &[&str]) -> Response {
        let roles: Vec<_> = roles
            .iter()
            .map(|r| serde_json::json!({"rolename": r}))
            .collect();
        Response {
            data: Some(
                serde_json::json!({"client": {"username": "admin", "roles": roles, "groups": []}}),
            ),
            ..answer("getClient", None)
        }
    }

    #[test]
    fn existing_roles_and_acls_are_fine_other_errors_are_not() {
        let fine = [
            answer("createRole", Some(errors::ROLE_EXISTS)),
            answer("addRoleACL", Some(errors::ACL_EXISTS)),
            get_client(&["admin", CLOUD_ROLE]),
        ];
        assert!(cloud_has_role(&fine).unwrap());
        let without = [answer("createRole", None), get_client(&["admin"])];
        assert!(!cloud_has_role(&without).unwrap());
        let refused = [
            answer("createRole", Some("Invalid/missing rolename")),
            get_client(&[]),
        ];
        let error = cloud_has_role(&refused).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the broker refused createRole: Invalid/missing rolename"
        );
        assert!(cloud_has_role(&[answer("getClient", None)]).is_err());
    }

    #[test]
    fn the_cloud_role_is_made_before_the_cloud_user_is_looked_at() {
        let topics = Topics::new("p").unwrap();
        let commands = cloud_role_commands(&topics, "g", "admin");
        assert_eq!(commands.first().map(Command::name), Some("createRole"));
        assert!(matches!(
            commands.last(),
            Some(Command::GetClient { username }) if username == "admin"
        ));
        assert!(matches!(
            cloud_join_commands("admin").as_slice(),
            [Command::AddClientRole { username, rolename }]
                if username == "admin" && rolename == CLOUD_ROLE
        ));
    }

    #[tokio::test]
    async fn only_transient_failures_are_retried_and_not_forever() {
        let mut calls = 0;
        let outcome = with_retries("test", Duration::ZERO, || {
            calls += 1;
            async { Err(DynsecError::Timeout(Duration::from_secs(1))) }
        })
        .await;
        assert!(outcome.is_err());
        assert_eq!(calls, ATTEMPTS);

        let mut calls = 0;
        let outcome = with_retries("test", Duration::ZERO, || {
            calls += 1;
            async {
                Err(DynsecError::Refused {
                    command: "createClient".into(),
                    error: "Invalid password".into(),
                })
            }
        })
        .await;
        assert!(outcome.is_err());
        assert_eq!(calls, 1);
    }
}
